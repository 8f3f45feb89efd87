/**
 * Test helpers for apps built on b24-portal-tokens: the TokenStore conformance suite and a
 * stand-in Bitrix24 (OAuth server and portals' REST on one loopback port).
 * @packageDocumentation
 */
export {};
