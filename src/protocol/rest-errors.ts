// Portal REST error shapes (PROTOCOL.md section 4).

/** The `error` code of a portal REST error body: v2 `{error: 'x'}`, v3 `{error: {code: 'x'}}`. */
export function restErrorCode(data: unknown): string | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const error = (data as { error?: unknown }).error;
  if (typeof error === 'string') return error;
  if (error !== null && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
