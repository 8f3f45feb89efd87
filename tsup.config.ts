// Builds every public entry point as ESM + CJS with declarations for both, and the command-line
// tool as ESM with a shebang (`bin` in package.json): dist/cli.js and its chunks in dist/cli-chunks/.
import { rmSync } from 'node:fs';
import { defineConfig } from 'tsup';

const external = ['@bitrix24/b24jssdk', 'vitest', 'better-sqlite3', 'pg', 'ioredis', 'redis', '@opentelemetry/api'];
// B24PT_BUILD_DTS=0 leaves the declarations out: the test suite's own build of a fresh clone
// (test/global-setup.ts) needs none, and they are nine tenths of the build's CPU.
const dts = process.env['B24PT_BUILD_DTS'] !== '0';

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      store: 'src/store-entry.ts',
      'testing/index': 'src/testing/index.ts',
      'stores/postgres': 'src/store/postgres/index.ts',
      'stores/redis': 'src/store/redis/index.ts',
      'stores/sqlite': 'src/store/sqlite/index.ts',
      otel: 'src/otel/index.ts',
    },
    format: ['esm', 'cjs'],
    dts,
    sourcemap: true,
    // Everything but the command-line tool's output: both builds run at once, and this clean must not
    // race the other build's writes (that build empties dist/cli-chunks/ itself).
    clean: ['!cli.js', '!cli.js.map', '!cli-chunks/**'],
    target: 'node20',
    platform: 'node',
    splitting: true,
    treeshake: true,
    external,
  },
  {
    // The `b24-portal-tokens` executable: ESM, no declarations, none of the library's chunks. Split,
    // so that the modules it imports dynamically (src/cli/bitrix24.ts: the pool and the SDK) load only
    // when a command needs them; unsplit, esbuild would hoist their imports into dist/cli.js. Its
    // chunks go to dist/cli-chunks/ (never mixed with the library's dist/chunk-*), emptied before
    // each build of it so no stale chunk is packed.
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    splitting: true,
    treeshake: true,
    // The shebang is main.ts's first line: esbuild keeps it in dist/cli.js alone (a `banner` would
    // put it atop every chunk too), and tsup makes that file executable.
    esbuildOptions(options) {
      options.chunkNames = 'cli-chunks/[name]-[hash]';
    },
    esbuildPlugins: [
      {
        name: 'clean-cli-chunks',
        setup(build) {
          build.onStart(() => rmSync('dist/cli-chunks', { recursive: true, force: true }));
        },
      },
    ],
    external,
  },
]);
