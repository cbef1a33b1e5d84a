// Baseline 2: a minimal Fastify route doing the same LDAP searches as idmount's rfc2307 lookup
// (user by uid, then groups by memberUid or primary gidNumber, paged) with raw ldapts and a pool
// of the same size, bound once. No cache, no policy, no plan: the floor idmount is measured against.
import Fastify from 'fastify';
import { AndFilter, Client, EqualityFilter, OrFilter } from 'ldapts';
import { announce, benchLogger, exitOnSignal } from './common.ts';

const url = process.env.BENCH_LDAP_URL as string;
const suffix = process.env.BENCH_LDAP_SUFFIX as string;
const poolSize = Number(process.env.BENCH_POOL_SIZE ?? 4);
const clients = Array.from({ length: poolSize }, () => new Client({ url }));
await Promise.all(
  clients.map((c) => c.bind(process.env.BENCH_BIND_DN as string, process.env.BENCH_BIND_PW as string)),
);
let next = 0;
const client = () => clients[next++ % clients.length] as Client;

const app = Fastify({ loggerInstance: benchLogger() });
app.get<{ Params: { name: string } }>('/users/:name/spawn-plan', async (request, reply) => {
  const { name } = request.params;
  const { searchEntries } = await client().search(`ou=people,${suffix}`, {
    scope: 'sub',
    filter: new AndFilter({
      filters: [
        new EqualityFilter({ attribute: 'objectClass', value: 'posixAccount' }),
        new EqualityFilter({ attribute: 'uid', value: name }),
      ],
    }),
    attributes: ['uid', 'uidNumber', 'gidNumber', 'homeDirectory', 'cn', 'loginShell', 'mail'],
    sizeLimit: 3,
  });
  const user = searchEntries[0];
  if (user === undefined) return reply.code(404).send({ code: 'USER_NOT_FOUND' });
  const groups = [];
  for await (const page of client().searchPaginated(`ou=groups,${suffix}`, {
    scope: 'sub',
    filter: new AndFilter({
      filters: [
        new EqualityFilter({ attribute: 'objectClass', value: 'posixGroup' }),
        new OrFilter({
          filters: [
            new EqualityFilter({ attribute: 'memberUid', value: name }),
            new EqualityFilter({ attribute: 'gidNumber', value: String(user.gidNumber) }),
          ],
        }),
      ],
    }),
    attributes: ['cn', 'gidNumber'],
    paged: { pageSize: 500 },
  })) {
    groups.push(...page.searchEntries.map((g) => ({ name: g.cn, gid: Number(g.gidNumber) })));
  }
  return { username: name, uid: Number(user.uidNumber), gid: Number(user.gidNumber), groups };
});
app.addHook('onClose', async () => {
  await Promise.all(clients.map((c) => c.unbind()));
});
exitOnSignal(() => app.close());
announce(await app.listen({ host: '127.0.0.1', port: 0 }));
