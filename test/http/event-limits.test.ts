// The REST event handler's listener turns: per-portal and total bounds, turns handed to the portals
// in rotation (a busy portal cannot hold them all), and the duplicate filter's bounded memory.
import { describe, expect, it } from 'vitest';
import { DuplicateFilter, ListenerLimiter } from '../../src/http/event-limits.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ListenerLimiter', () => {
  it('runs at most runningPerPortal of a portal and running in all; refuses past the queues', async () => {
    const limiter = new ListenerLimiter({ running: 3, runningPerPortal: 2, queued: 4, queuedPerPortal: 3 });
    const started: string[] = [];
    const releases: (() => void)[] = [];
    const admit = (memberId: string): string | undefined => {
      const turn = limiter.admit(memberId);
      if (typeof turn === 'string') return turn;
      void turn.then((release) => {
        started.push(memberId);
        releases.push(release);
      });
      return undefined;
    };
    for (let i = 0; i < 5; i++) expect(admit('busy')).toBeUndefined(); // 2 run, 3 wait
    expect(admit('busy')).toBe('portal');
    expect(admit('quiet')).toBeUndefined(); // the third turn in all
    expect(admit('other')).toBeUndefined(); // waits: 4 queued in all
    expect(admit('late')).toBe('total');
    await tick();
    expect(limiter.counts()).toEqual({ running: 3, queued: 4 });
    expect(started).toEqual(['busy', 'busy', 'quiet']);
    // Freed turns go to the portals in rotation: 'other' is not starved behind 'busy'.
    releases.shift()?.();
    releases.shift()?.();
    await tick();
    expect(started.slice(3).sort()).toEqual(['busy', 'other']);
    expect(limiter.counts()).toEqual({ running: 3, queued: 2 });
  });
});

describe('DuplicateFilter', () => {
  it('knows a digest while it waits, forgets it once started, and keeps at most max', () => {
    const filter = new DuplicateFilter(2);
    expect(filter.waiting('a')).toBe(false);
    expect(filter.waiting('a')).toBe(true);
    filter.started('a');
    expect(filter.waiting('a')).toBe(false);
    filter.waiting('b');
    filter.waiting('c'); // 'a' is the oldest and goes
    expect(filter.waiting('a')).toBe(false);
  });
});
