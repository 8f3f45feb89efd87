/**
 * Placeholder: the sqlite adapter is being built.
 * @packageDocumentation
 */
export {};
