// What the global setup (test/global-setup.ts) hands every test file through vitest's
// provide/inject. Types only: the global setup must not import vitest's runtime.
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    /** The directory of this run's bundled child scripts (test/support/children.ts), or '' when there are none. */
    childrenDir: string;
    /** The status file of the dist/ build this run started (test/support/dist.ts), or '' when dist/ was up to date. */
    distBuild: string;
  }
}
