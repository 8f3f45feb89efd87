/**
 * Placeholder: the postgres adapter is being built.
 * @packageDocumentation
 */
export {};
