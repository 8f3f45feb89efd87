// Issue 24: the progress bar started at `0/0 100%`. It now appears once there is a total to show.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progress } from '../../src/cli/io.js';
import { memoryIo } from './helpers.js';

function terminal(): Writable & { text: string; isTTY: boolean; columns: number } {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      stream.text += chunk.toString();
      done();
    },
  }) as Writable & { text: string; isTTY: boolean; columns: number };
  stream.text = '';
  stream.isTTY = true;
  stream.columns = 100;
  return stream;
}

describe('the progress bar (issue 24)', () => {
  it('never shows 0/0 100%: nothing before a total, the count once there is one', () => {
    const stream = terminal();
    const io = { ...memoryIo(), isTTY: true, progressStream: stream };
    const empty = progress(io, 'migrating');
    empty.total(0);
    empty.stop();
    expect(stream.text).not.toMatch(/0\/0/);
    const bar = progress(io, 'migrating');
    bar.total(3);
    bar.tick();
    bar.tick();
    bar.tick();
    bar.stop();
    expect(stream.text).not.toMatch(/0\/0/);
    expect(stream.text).toMatch(/3\/3 100%/);
  });
});
