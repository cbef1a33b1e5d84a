// idmount itself, built exactly as `idmount serve` builds it, over a config file.

import { buildApp } from '../../dist/app.js';
import { loadConfig } from '../../dist/settings.js';
import { announce, benchLogger, exitOnSignal } from './common.ts';

const loaded = loadConfig(process.env.BENCH_CONFIG as string);
const app = await buildApp(loaded.config, { baseDir: loaded.baseDir, loggerInstance: benchLogger() });
exitOnSignal(() => app.close());
announce(await app.listen({ host: '127.0.0.1', port: 0 }));
