/**
 * b24-portal-tokens: multi-tenant Bitrix24 token management.
 *
 * Table of contents: errors; the TokenStore contract and its built-in stores; lifecycle events;
 * the client pool; the lifecycle handler and its HTTP adapters; the authorization-code flow.
 * @packageDocumentation
 */

// Errors
export * from './errors.js';

// The TokenStore contract
export type * from './store/token-store.js';

// Lifecycle events
export type * from './events/types.js';
