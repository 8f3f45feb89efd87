// The learned headroom (issue 23 item 3): the documented limits at first, a multiplicative give-way
// at a 503 (once per burst of 503s), a slow linear recovery, bounded by min and max.
import { describe, expect, it } from 'vitest';
import { HeadroomLearner } from '../../src/budget/headroom.js';
import { ManualClock } from '../../src/clock.js';
import { InvalidArgumentError } from '../../src/errors.js';

describe('HeadroomLearner', () => {
  it('starts at the documented limits, gives way once per burst of 503s, recovers slowly, never below min', async () => {
    const clock = new ManualClock();
    const h = new HeadroomLearner(clock, { decrease: 0.5, recoverPerSec: 0.01, min: 0.2, settleMs: 1000 });
    expect(h.share('a')).toBe(1);
    expect(h.limited('a')).toBe(0.5);
    expect(h.limited('a')).toBe(0.5); // the same burst of refusals
    expect(h.share('b')).toBe(1); // per portal
    await clock.advance(10_000);
    expect(h.share('a')).toBeCloseTo(0.6, 10);
    expect(h.limited('a')).toBeCloseTo(0.3, 10);
    await clock.advance(1000);
    expect(h.limited('a')).toBeCloseTo(0.2, 10); // 0.31 x 0.5, held at min
    await clock.advance(100_000);
    expect(h.share('a')).toBe(1); // fully recovered
  });

  it('refuses settings outside their ranges', () => {
    const clock = new ManualClock();
    expect(() => new HeadroomLearner(clock, { max: 0 })).toThrow(InvalidArgumentError);
    expect(() => new HeadroomLearner(clock, { max: 0.5, min: 0.6 })).toThrow(InvalidArgumentError);
    expect(() => new HeadroomLearner(clock, { decrease: 1 })).toThrow(InvalidArgumentError);
    expect(() => new HeadroomLearner(clock, { recoverPerSec: -1 })).toThrow(InvalidArgumentError);
  });
});
