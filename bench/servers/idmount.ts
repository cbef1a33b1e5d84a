// idmount itself, built exactly as `idmount serve` builds it, over a config file.
import { loadConfig } from '../../dist/config/load.js';
import { buildApp } from '../../dist/http/app.js';
import { announce, benchLogger, exitOnSignal } from './common.ts';

const loaded = loadConfig(process.env.BENCH_CONFIG as string);
const app = await buildApp(loaded.config, { baseDir: loaded.baseDir, loggerInstance: benchLogger() });
exitOnSignal(() => app.close());
announce(await app.listen({ host: '127.0.0.1', port: 0 }));
