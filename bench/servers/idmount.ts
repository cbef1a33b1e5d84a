// idmount itself, built exactly as `idmount serve` builds it, over a config file.
import { loadConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/http/app.js';
import { announce, benchLogger } from './common.js';

const loaded = loadConfig(process.env.BENCH_CONFIG as string);
const app = await buildApp(loaded.config, { baseDir: loaded.baseDir, loggerInstance: benchLogger() });
announce(await app.listen({ host: '127.0.0.1', port: 0 }));
