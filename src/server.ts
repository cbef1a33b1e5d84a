// The process around the app: logger options, listen, banner, and graceful shutdown (SIGTERM
// drains in-flight requests within the pod's grace period).
import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { buildApp } from './app.js';
import { REDACT_PATHS, requestSerializer } from './http/logging.js';
import type { LoadedConfig } from './settings.js';

export function createLogger(level: string, destination?: pino.DestinationStream) {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { req: requestSerializer as (req: unknown) => unknown },
      base: { service: 'idmount' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export async function startServer(loaded: LoadedConfig, options: { port?: number } = {}) {
  const { config } = loaded;
  const logger = createLogger(config.logging.level);
  const app = await buildApp(config, { baseDir: loaded.baseDir, loggerInstance: logger });
  const port = options.port ?? config.server.port;
  const address = await app.listen({ host: config.server.host, port });
  logger.info(
    { address, config: loaded.origin, sources: config.sources.map((s) => s.name) },
    'idmount listening',
  );

  if (loaded.embedded) {
    const demo = address.replace('0.0.0.0', '127.0.0.1');
    process.stdout.write(
      [
        '',
        `  idmount is running on its embedded demo directory at ${demo} (loopback only, no authentication).`,
        `  Try:   curl -s ${demo}/users/alice/spawn-plan`,
        `         curl -s '${demo}/users/alice/spawn-plan?explain=true'`,
        `  Docs:  ${demo}/docs`,
        '',
        '',
      ].join('\n'),
    );
  }

  closeWithGrace({ delay: config.server.shutdownGrace }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down: draining in-flight requests');
    await app.close();
  });
  return app;
}
