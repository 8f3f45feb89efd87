/**
 * Placeholder: the redis adapter is being built.
 * @packageDocumentation
 */
export {};
