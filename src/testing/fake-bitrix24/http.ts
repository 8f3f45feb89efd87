// HTTP plumbing of the stand-in Bitrix24: bounded body reading, parameter merging, JSON answers.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodePhpForm } from './php-form.js';
import type { Params } from './util.js';

const MAX_BODY_BYTES = 1024 * 1024;

/** Reads the body as UTF-8; `null` when it exceeds the size limit. */
export async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Query parameters overlaid with the body's (JSON or form, as the real server accepts both);
 * `null` for a body that claims JSON but is not a JSON object.
 */
export function mergeParams(query: URLSearchParams, body: string, contentType: string | undefined): Params | null {
  const merged: Params = Object.assign(Object.create(null) as Params, decodePhpForm(query));
  if (body.trim() === '') return merged;
  if ((contentType ?? '').toLowerCase().includes('json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return null;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    for (const [key, value] of Object.entries(parsed)) merged[key] = value;
    return merged;
  }
  return Object.assign(merged, decodePhpForm(new URLSearchParams(body)));
}

/** Answers JSON, unless the response is already answered or gone. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
