// What the request log may show: secrets are redacted wherever they appear in a logged object, and
// a request's query string keeps its keys but not its values (a token sent as ?access_token=…
// must never reach a log line), except the harmless `explain` switch.
import type { FastifyRequest } from 'fastify';

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.bindPassword',
  '*.clientSecret',
  '*.password',
  '*.token',
];

const KEPT_QUERY_KEYS = new Set(['explain']);

/** The URL with every query value but `explain` replaced by `[redacted]`. */
export function redactQuery(url: string): string {
  const mark = url.indexOf('?');
  if (mark === -1) return url;
  const query = url
    .slice(mark + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const key = eq === -1 ? pair : pair.slice(0, eq);
      return KEPT_QUERY_KEYS.has(key) ? pair : `${key}=[redacted]`;
    })
    .join('&');
  return `${url.slice(0, mark)}?${query}`;
}

/** pino serializer for `req`: Fastify's usual fields, the URL without query values. */
export const requestSerializer = (request: FastifyRequest) => ({
  method: request.method,
  url: redactQuery(request.url),
  host: request.host,
  remoteAddress: request.ip,
  remotePort: request.socket?.remotePort,
});
