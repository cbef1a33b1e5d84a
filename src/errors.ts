// The error vocabulary of idmount: every failure a client can see has a stable code and status.
// The HTTP layer maps these to application/problem+json in one place (src/http/problem.ts).

export const ErrorCodes = {
  INVALID_USERNAME: 400,
  INVALID_REQUEST: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  USER_NOT_FOUND: 404,
  POLICY_VIOLATION: 422,
  DIRECTORY_ENTRY_INVALID: 422,
  RATE_LIMITED: 429,
  SOURCE_UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class IdmountError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra problem members a client may rely on (e.g. `attribute`, `source`, `rule`). */
  readonly extras: Record<string, unknown>;
  /** Seconds a client should wait before retrying (503 only). */
  readonly retryAfter: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { extras?: Record<string, unknown>; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'IdmountError';
    this.code = code;
    this.status = ErrorCodes[code];
    this.extras = options.extras ?? {};
    this.retryAfter = options.retryAfter;
  }
}

export const invalidUsername = (reason: string) =>
  new IdmountError('INVALID_USERNAME', `The username is not acceptable: ${reason}.`, { extras: { reason } });

export const userNotFound = (name: string) =>
  new IdmountError('USER_NOT_FOUND', `No directory source knows the user '${name}'.`);

export const policyViolation = (message: string, extras: Record<string, unknown> = {}) =>
  new IdmountError('POLICY_VIOLATION', message, { extras });

/** A directory entry exists but cannot be turned into an identity (bad attribute, duplicate entry). */
export const directoryEntryInvalid = (
  source: string,
  message: string,
  extras: Record<string, unknown> = {},
  /** What only the log may show (DNs, raw values): never sent to the client. */
  cause?: unknown,
) => new IdmountError('DIRECTORY_ENTRY_INVALID', message, { extras: { source, ...extras }, cause });

/**
 * The directory answered a search with an error result rather than failing to answer: a search
 * base that does not exist, an account without read rights, a control it will not honour. Asking
 * again will not help until its configuration changes; the log names the base and the result.
 */
export const searchRefused = (source: string, result: string, cause: unknown) =>
  new IdmountError(
    'SOURCE_UNAVAILABLE',
    `The directory source '${source}' refused the search: ${result}. Its search bases and the bind account's rights need checking; the log names the base.`,
    { extras: { source }, retryAfter: 60, cause },
  );

/**
 * The directory answered only part of a search (a size or time limit, a referral, a paging cut):
 * the part is never taken as the whole, so "no such user" or a shorter group list cannot follow.
 */
export const incompleteAnswer = (source: string, why: string, cause: unknown) =>
  new IdmountError(
    'SOURCE_UNAVAILABLE',
    `The directory source '${source}' did not give a complete answer (${why}); refusing to read part of it.`,
    { extras: { source }, retryAfter: 60, cause },
  );

export const sourceUnavailable = (source: string, retryAfter: number, cause?: unknown) =>
  new IdmountError(
    'SOURCE_UNAVAILABLE',
    `The directory source '${source}' is unavailable; try again shortly.`,
    {
      extras: { source },
      retryAfter,
      cause,
    },
  );
