// The checks every event endpoint makes before it parses: POST only, a body the parsers read (the
// parsers' own classifier decides form or JSON, so a handler cannot disagree with them), within the
// size limit. One place for the lifecycle and the REST event handlers.

import { classifyBody, FORM_MEDIA_TYPE, JSON_MEDIA_TYPE, rawByteLength } from '../body.js';
import { ErrorCode } from '../errors.js';
import { headerValue, jsonResponse, methodNotAllowedResponse, payloadTooLargeResponse, type PlainRequest, type PlainResponse } from '../plain.js';

/** A request that passed: the options to parse its body with. */
export interface Screened {
  /** The content type to parse a raw body as; absent for a body parser's output. */
  readonly contentType?: string;
}

/** The 405, 415 or 413 a request gets, or the parse options when it may be parsed. */
export function screenRequest(request: PlainRequest, maxBodyBytes: number): PlainResponse | Screened {
  if (typeof request.method !== 'string' || request.method.toUpperCase() !== 'POST') return methodNotAllowedResponse('POST');
  const kind = classifyBody(headerValue(request.headers ?? {}, 'content-type'), request.body);
  if (kind === 'unsupported') {
    return jsonResponse(415, { error: ErrorCode.UnsupportedMediaType }, { accept: `${FORM_MEDIA_TYPE}, ${JSON_MEDIA_TYPE}` });
  }
  if (rawByteLength(request.body) > maxBodyBytes) return payloadTooLargeResponse();
  return kind === 'parsed' ? {} : { contentType: kind === 'json' ? JSON_MEDIA_TYPE : FORM_MEDIA_TYPE };
}

/** Whether {@link screenRequest} answered the request already. */
export function isAnswer(value: PlainResponse | Screened): value is PlainResponse {
  return 'status' in value;
}
