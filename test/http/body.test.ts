// The one body classifier (shared by the parser and the lifecycle handler) and the one bounded reader
// (shared by the Node and Fetch adapters and the OAuth client).

import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { classifyBody, readBounded, TOO_LARGE } from '../../src/body.js';
import { parseInstallEvent } from '../../src/events/parse.js';
import { fixture } from '../events/helpers.js';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

describe('classifyBody', () => {
  it('follows a declared content type', () => {
    expect(classifyBody('application/x-www-form-urlencoded; charset=utf-8', '{}')).toBe('form');
    expect(classifyBody('Application/JSON', 'a=b')).toBe('json');
    expect(classifyBody('application/vnd.api+json', 'a=b')).toBe('json');
    expect(classifyBody('text/plain', 'a=b')).toBe('unsupported');
  });

  it('sniffs text and bytes without one, skipping whitespace and a byte-order mark', () => {
    expect(classifyBody(undefined, '  \n{"event":1}')).toBe('json');
    expect(classifyBody('', '\uFEFF{"event":1}')).toBe('json');
    expect(classifyBody(undefined, Buffer.concat([BOM, Buffer.from('{"event":1}')]))).toBe('json');
    expect(classifyBody(undefined, 'event=ONAPPINSTALL')).toBe('form');
    expect(classifyBody(undefined, undefined)).toBe('form');
  });

  it('takes a URLSearchParams as a form and any other object as already parsed', () => {
    expect(classifyBody('text/plain', new URLSearchParams('a=b'))).toBe('form');
    expect(classifyBody(undefined, { event: 'ONAPPINSTALL' })).toBe('parsed');
  });

  it('agrees with the parser on a JSON body with a byte-order mark', () => {
    const bytes = Buffer.concat([BOM, Buffer.from(fixture('install.json'))]);
    expect(classifyBody(undefined, bytes)).toBe('json');
    expect(parseInstallEvent(bytes).type).toBe('install');
  });
});

describe('readBounded', () => {
  const chunks = (...sizes: number[]) => sizes.map((size) => new Uint8Array(size).fill(1));

  it('joins the chunks of a Node stream and of a web stream', async () => {
    expect((await readBounded(Readable.from(chunks(3, 4)), 10)) as Uint8Array).toHaveLength(7);
    expect((await readBounded(new Blob([new Uint8Array(5), new Uint8Array(5)]).stream(), 10)) as Uint8Array).toHaveLength(10);
  });

  it('returns undefined for an empty body', async () => {
    expect(await readBounded(Readable.from([]), 10)).toBeUndefined();
  });

  it('stops at the first chunk past the limit and cancels a web stream', async () => {
    let pulled = 0;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(6));
      },
      cancel() {
        cancelled = true;
      },
    });
    expect(await readBounded(stream, 10)).toBe(TOO_LARGE);
    expect(cancelled).toBe(true);
    expect(pulled).toBeLessThan(5);
  });

  it('leaves a Node stream undestroyed when told not to cancel', async () => {
    const stream = Readable.from(chunks(6, 6, 6));
    expect(await readBounded(stream, 10, { cancel: false })).toBe(TOO_LARGE);
    expect(stream.destroyed).toBe(false);
  });
});
