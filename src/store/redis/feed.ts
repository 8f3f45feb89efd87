// The Redis store's change feed: one dedicated subscriber connection per subscription, reporting
// 'lost' when it drops and 'restored' once it is subscribed again after a reconnect. On a cluster
// the feed's connection goes to one node (a cluster forwards every PUBLISH to every node), and a
// feed whose node is gone opens a new connection to the next node instead of waiting for it.

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
  return openReconnectingFeed(connection, channel, listener, timeoutMs, onClosed);
}

/** Reports a status to the listener, ignoring what it throws (the contract says so). */
function reporter(listener: StoreChangeListener): (value: 'lost' | 'restored') => void {
  return (value) => {
    try {
      listener.onStatus?.(value);
    } catch {
      // Ignored, as the contract says.
    }
  };
}

/** Passes the changes published on `channel` to the listener while `open()` says so. */
function deliver(listener: StoreChangeListener, channel: string, open: () => boolean): (from: string, message: string) => void {
  return (from, message) => {
    if (!open() || from !== channel) return;
    const change = decodeChange(message);
    if (change === undefined) return;
    try {
      listener.onChange(change);
    } catch {
      // Ignored, as the contract says.
    }
  };
}

/**
 * The change feed on a cluster: each connection from `connect` (a plain connection to the next
 * node, which does not reconnect by itself) is used until it drops; then `'lost'`, and a new
 * connection to the next node, until one is subscribed again (`'restored'`).
 */
export async function openRotatingFeed(
  connect: () => RedisClientLike,
  channel: string,
  listener: StoreChangeListener,
  timeoutMs: number,
  onClosed: () => void,
): Promise<StoreSubscription> {
  let closed = false;
  let lost = false;
  let attempt = 0;
  let current: RedisClientLike | undefined;
  const status = reporter(listener);
  const message = deliver(listener, channel, () => !closed);

  const open = async (first: boolean): Promise<void> => {
    const connection = connect();
    current = connection;
    let gone = false;
    const onGone = (): void => {
      if (gone) return;
      gone = true;
      connection.disconnect();
      if (closed || current !== connection) return;
      if (!lost) {
        lost = true;
        status('lost');
      }
      const delay = Math.min(50 * 2 ** Math.min(attempt++, 4), 1000);
      setTimeout(() => {
        if (!closed) open(false).catch(() => undefined);
      }, delay);
    };
    connection.on('error', () => undefined);
    connection.on('message', message);
    if (!first) {
      connection.on('close', onGone);
      connection.on('end', onGone);
    }
    try {
      await withDeadline(connection.subscribe(channel), timeoutMs, 'subscribe');
    } catch (error) {
      if (first) {
        closed = true;
        connection.disconnect();
        throw storeFailure('subscribe', error);
      }
      onGone();
      return;
    }
    if (first) {
      connection.on('close', onGone);
      connection.on('end', onGone);
    }
    attempt = 0;
    if (lost && !closed && current === connection) {
      lost = false;
      status('restored');
    }
  };

  await open(true);
  return {
    close: async () => {
      if (closed) return;
      closed = true;
      onClosed();
      const connection = current;
      if (connection === undefined) return;
      if (connection.status === 'ready') await withDeadline(connection.quit(), timeoutMs, 'unsubscribe').catch(() => undefined);
      connection.disconnect();
    },
  };
}

async function openReconnectingFeed(
  connection: RedisClientLike,
  channel: string,
  listener: StoreChangeListener,
  timeoutMs: number,
  onClosed: () => void,
): Promise<StoreSubscription> {
  let closed = false;
  let lost = false;
  const status = reporter(listener);
  connection.on('error', () => undefined); // reconnects by itself; an unhandled 'error' would only be printed
  connection.on('message', deliver(listener, channel, () => !closed));
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
