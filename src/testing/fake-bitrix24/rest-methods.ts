// The portal REST methods the stand-in knows: profile, user.current, user.admin, server.time,
// app.info and batch, answered as the chain's own user; custom methods registered by tests first.

import { decodePhpForm } from './php-form.js';
import type { PortalState } from './ledger.js';
import type { StandIn } from './runtime.js';
import type { FakeRestOutcome } from './types.js';
import { str, type Params } from './util.js';

/** The `time` block of a successful REST answer; the SDK's limiter reads `operating` from it. */
export function timeBlock(now: () => number): Record<string, unknown> {
  const nowMs = now();
  const start = nowMs / 1000;
  const finish = (nowMs + 1) / 1000;
  return {
    start,
    finish,
    duration: 0.001,
    processing: 0,
    date_start: new Date(start * 1000).toISOString(),
    date_finish: new Date(finish * 1000).toISOString(),
    operating_reset_at: Math.floor(start) + 600,
    operating: 0,
  };
}

/** Runs a REST method (custom first, then built-in) as `userId` of the portal. */
export function callMethod(s: StandIn, state: PortalState, userId: number, method: string, version: 'v2' | 'v3', params: Params): FakeRestOutcome {
  const { ledger, runtime } = s;
  const custom = runtime.methods.get(method);
  if (custom !== undefined) {
    const view = ledger.view(state.memberId);
    if (view !== undefined) return custom({ portal: view, userId, params, version });
  }
  const user = ledger.user(state, userId);
  const isAdmin = user.admin;
  if (version === 'v3') {
    if (method === 'profile') {
      return {
        result: {
          profile: {
            id: userId,
            admin: isAdmin,
            name: user.name,
            lastName: user.lastName,
            personalGender: '',
            personalPhoto: '',
            timeZone: '',
            timeZoneOffset: 0,
          },
        },
      };
    }
    return { error: 'BITRIX_REST_V3_EXCEPTION_METHODNOTFOUNDEXCEPTION', status: 404, description: `Method '${method}' not found` };
  }
  switch (method) {
    case 'batch':
      return batch(s, state, userId, params);
    case 'profile':
      return {
        result: {
          ID: String(userId),
          ADMIN: isAdmin,
          NAME: user.name,
          LAST_NAME: user.lastName,
          PERSONAL_GENDER: '',
          PERSONAL_PHOTO: '',
          TIME_ZONE: '',
          TIME_ZONE_OFFSET: 0,
        },
      };
    case 'user.current':
      return {
        result: {
          ID: String(userId),
          XML_ID: '',
          ACTIVE: true,
          NAME: user.name,
          LAST_NAME: user.lastName,
          SECOND_NAME: '',
          EMAIL: `user${userId}@${state.domain}`,
          PERSONAL_GENDER: '',
          TIME_ZONE: '',
          UF_DEPARTMENT: [1],
          IS_ONLINE: 'Y',
          USER_TYPE: 'employee',
        },
      };
    case 'user.admin':
      return { result: isAdmin };
    case 'server.time':
      return { result: new Date(ledger.config.now()).toISOString().replace(/\.\d{3}Z$/, '+00:00') };
    case 'app.info':
      return {
        result: {
          ID: 1,
          CODE: ledger.config.clientId,
          VERSION: state.appVersion,
          STATUS: state.status,
          INSTALLED: true,
          PAYMENT_EXPIRED: 'N',
          DAYS: null,
          LANGUAGE_ID: 'en',
          LICENSE: 'en_project',
          LICENSE_TYPE: 'project',
          LICENSE_FAMILY: 'project',
        },
      };
    default:
      return { error: 'ERROR_METHOD_NOT_FOUND', status: 404, description: 'Method not found!' };
  }
}

/** REST v2 `batch`: `cmd` rows `method?query` (an object or a list), run in order under one token. */
function batch(s: StandIn, state: PortalState, userId: number, params: Params): FakeRestOutcome {
  const cmd = params['cmd'];
  if (cmd === null || typeof cmd !== 'object') {
    return { error: 'ERROR_BATCH_METHOD_NOT_ALLOWED', status: 400, description: 'cmd is required' };
  }
  const rows = Object.entries(cmd as Record<string, unknown>);
  const asList = Array.isArray(cmd);
  const halt = str(params['halt']) === '1' || params['halt'] === true;
  const result: Record<string, unknown> = {};
  const errors: Record<string, unknown> = {};
  const times: Record<string, unknown> = {};
  for (const [key, row] of rows) {
    if (typeof row !== 'string') continue;
    const mark = row.indexOf('?');
    const name = (mark === -1 ? row : row.slice(0, mark)).toLowerCase();
    const query = decodePhpForm(new URLSearchParams(mark === -1 ? '' : row.slice(mark + 1)));
    const outcome: FakeRestOutcome =
      name === 'batch'
        ? { error: 'ERROR_BATCH_METHOD_NOT_ALLOWED', description: 'Nested batch is not allowed' }
        : callMethod(s, state, userId, name, 'v2', query);
    if ('error' in outcome) {
      errors[key] = { error: outcome.error, error_description: outcome.description ?? outcome.error };
      if (halt) break;
    } else {
      result[key] = outcome.result;
      times[key] = timeBlock(s.ledger.config.now);
    }
  }
  // PHP encodes a list as a JSON array only while its keys run 0..n-1; a gap makes it an object.
  const shape = (record: Record<string, unknown>): unknown => {
    const keys = Object.keys(record);
    return asList && keys.every((key, i) => key === String(i)) ? Object.values(record) : record;
  };
  return {
    result: {
      result: shape(result),
      result_error: Object.keys(errors).length === 0 ? [] : shape(errors),
      result_total: [],
      result_next: [],
      result_time: shape(times),
    },
  };
}
