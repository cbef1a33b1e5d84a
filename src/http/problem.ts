// The one error handler: every failure leaves as application/problem+json (RFC 9457) with a
// stable `code`. 5xx details stay in the log (with the request id); clients get a sentence.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { type ErrorCode, ErrorCodes, IdmountError } from '../errors.js';

const TITLES: Record<ErrorCode, string> = {
  INVALID_USERNAME: 'Invalid username',
  INVALID_REQUEST: 'Invalid request',
  UNAUTHENTICATED: 'Authentication required',
  FORBIDDEN: 'Not allowed',
  USER_NOT_FOUND: 'User not found',
  POLICY_VIOLATION: 'Policy violation',
  DIRECTORY_ENTRY_INVALID: 'Invalid directory entry',
  RATE_LIMITED: 'Too many requests',
  SOURCE_UNAVAILABLE: 'Directory source unavailable',
  INTERNAL: 'Internal error',
};

export const problemType = (code: ErrorCode) =>
  `urn:idmount:problem:${code.toLowerCase().replaceAll('_', '-')}`;

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: IdmountError) {
  if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
  if (error.code === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer realm="idmount"');
  return reply
    .code(error.status)
    .type('application/problem+json')
    .send({
      type: problemType(error.code),
      title: TITLES[error.code],
      status: error.status,
      detail: error.message,
      code: error.code,
      instance: request.url.length <= 512 ? request.url : undefined,
      ...error.extras,
    });
}

export function registerProblemHandlers(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | IdmountError, request, reply) => {
    if (err instanceof IdmountError) {
      if (err.status >= 500) request.log.warn({ err, cause: err.cause }, 'request failed: %s', err.code);
      else if (err.cause !== undefined)
        request.log.info({ code: err.code, cause: err.cause }, 'request refused');
      return sendProblem(reply, request, err);
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const detail = err.validation.map((v) => `${v.instancePath || 'request'}: ${v.message}`);
      return sendProblem(
        reply,
        request,
        new IdmountError('INVALID_REQUEST', `The request is not valid: ${detail.join('; ')}.`),
      );
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      // Fastify's own client errors (bad URL encoding, body too large, unsupported media type).
      return reply
        .code(status)
        .type('application/problem+json')
        .send({
          type: 'about:blank',
          title: 'Bad request',
          status,
          detail: err.message,
          code: err.code ?? 'BAD_REQUEST',
        });
    }
    request.log.error({ err }, 'unhandled error');
    return sendProblem(
      reply,
      request,
      new IdmountError('INTERNAL', 'An internal error occurred; it has been logged.'),
    );
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type('application/problem+json')
      .send({
        type: 'about:blank',
        title: 'Not found',
        status: 404,
        detail: `No route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}.`,
        code: 'ROUTE_NOT_FOUND',
      }),
  );
}

export { ErrorCodes };
