// The Redis store's change feed: one dedicated subscriber connection per subscription, reporting
// 'lost' when it drops and 'restored' once it is subscribed again after a reconnect.

import type { StoreChangeListener, StoreSubscription } from '../token-store.js';
import { decodeChange } from './codec.js';
import { storeFailure, withDeadline, type RedisClientLike } from './connection.js';

/**
 * Subscribes `connection` (a fresh client the feed then owns) to `channel`. The store re-subscribes
 * itself on every `ready` rather than trusting ioredis's automatic re-subscription, so `'restored'`
 * is reported only after Redis acknowledged the new SUBSCRIBE.
 */
export async function openFeed(
  connection: RedisClientLike,
  channel: string,
  listener: StoreChangeListener,
  timeoutMs: number,
  onClosed: () => void,
): Promise<StoreSubscription> {
  let closed = false;
  let lost = false;
  const status = (value: 'lost' | 'restored'): void => {
    try {
      listener.onStatus?.(value);
    } catch {
      // Listeners must not throw; the contract says what they throw is ignored.
    }
  };
  connection.on('error', () => undefined); // reconnects by itself; an unhandled 'error' would only be printed
  connection.on('message', (from: string, message: string) => {
    if (closed || from !== channel) return;
    const change = decodeChange(message);
    if (change === undefined) return;
    try {
      listener.onChange(change);
    } catch {
      // Ignored, as the contract says.
    }
  });
  const drop = (): void => {
    if (closed || lost) return;
    lost = true;
    status('lost');
  };
  connection.on('close', drop);
  connection.on('end', drop);
  connection.on('ready', () => {
    if (closed || !lost) return;
    connection.subscribe(channel).then(
      () => {
        if (closed || !lost) return;
        lost = false;
        status('restored');
      },
      // The connection dropped again before the SUBSCRIBE was answered: the next 'ready' retries.
      () => undefined,
    );
  });

  try {
    await withDeadline(connection.subscribe(channel), timeoutMs, 'subscribe');
  } catch (error) {
    closed = true;
    connection.disconnect();
    throw storeFailure('subscribe', error);
  }

  return {
    close: async () => {
      if (closed) return;
      closed = true;
      onClosed();
      if (connection.status === 'ready') await withDeadline(connection.quit(), timeoutMs, 'unsubscribe').catch(() => undefined);
      connection.disconnect();
    },
  };
}
