// Baseline 1: a bare Fastify route returning a fixed JSON body of the same size as a spawn plan.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { announce, benchLogger, exitOnSignal } from './common.ts';

const body = readFileSync(process.env.BENCH_BODY_FILE as string, 'utf8');
const app = Fastify({ loggerInstance: benchLogger() });
app.get('/users/:name/spawn-plan', async (_request, reply) =>
  reply.type('application/json; charset=utf-8').send(body),
);
exitOnSignal(() => app.close());
announce(await app.listen({ host: '127.0.0.1', port: 0 }));
