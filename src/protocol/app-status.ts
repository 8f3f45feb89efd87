// Bitrix24 app status letters (docs/protocol.md, "Domains, addresses and app statuses").

/** The known app status letters and what they mean. Unknown letters are kept as given. */
export const APP_STATUS_LETTERS = Object.freeze({
  F: 'free',
  D: 'demo',
  T: 'trial',
  P: 'paid',
  L: 'local',
  S: 'subscription',
} as const);

/**
 * The status assumed when neither the OAuth host nor the redirect names one: `L`, a local app,
 * which is what an app using the authorization-code flow usually is.
 */
export const DEFAULT_APP_STATUS = 'L';
