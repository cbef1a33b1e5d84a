// The spawn latency users feel, in `npm run bench` (alone: BENCH_ONLY=spawn npm run bench): the
// time from a hub's `POST /hub/api/users/{name}/server` to the user's pod existing in a real
// kube-apiserver (test/harness/kube.ts), through a real JupyterHub (test/harness/jupyterhub.ts).
// Two hubs with the same z2jh values run side by side in one run: one with idmount's rendered
// hub.extraConfig (the plan fetched from a real idmount over slapd), one with plain KubeSpawner and
// the same identity and volumes configured statically. Each spawn is of a distinct user, one at a
// time, the three kinds (idmount with the user cached, idmount with the user never seen, plain) in
// a random order in each round. The pod's arrival is timed by a watch on pods (each event stamped
// as it arrives, sub-millisecond clock), not by creationTimestamp (whole seconds). Each spawn is
// then stopped through the API and its pod deleted before the next starts.
// Bounded: BENCH_SPAWNS spawns of each kind (default 25), and every wait has a deadline.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { sha256Hex } from '../src/http/config.js';
import { type PodWatch, type RunningHub, startHub, watchPods } from '../test/harness/jupyterhub.js';
import { type KubeObject, type RunningKube, startKube } from '../test/harness/kube.js';
import { bulkMountRules } from '../test/harness/slapd.js';
import { mergeValues, renderExtraConfig, z2jhDefaults } from '../test/harness/z2jh-values.js';

export interface SpawnBenchTools {
  /** Starts a bench server script (bench/servers) and resolves with its URL. */
  server(script: string, env: Record<string, string>): Promise<string>;
  /** The token the bench's idmount accepts for spawn-plan:read. */
  token: string;
  /** A temp dir for config files. */
  work: string;
  /** The bench's LDAP source (slapd with the bulk fixture: user0 … user9999, 5 groups each). */
  ldapSource: object;
  log(line: string): void;
  fmt(n: number, digits?: number): string;
}

const SPAWNS = Math.min(Math.max(Number(process.env.BENCH_SPAWNS ?? 25), 5), 60);
const WARMUP = 3;
const WARM_TARGET_MS = 10;
const COLD_TARGET_MS = 30;

const csi = (server: string) => ({
  csi: { driver: 'nfs.csi.k8s.io', pathAttribute: 'share', volumeAttributes: { server } },
});

/** idmount's config: the bulk directory over LDAP, restricted-ready volumes (inline CSI). */
function idmountConfig(tools: SpawnBenchTools): string {
  const file = join(tools.work, 'spawn-latency.yaml');
  writeFileSync(
    file,
    YAML.stringify({
      auth: {
        tokens: [{ name: 'hub', sha256: sha256Hex(tools.token), scopes: ['spawn-plan:read'] }],
        rateLimit: { max: 100_000_000, window: '1m' },
      },
      sources: [tools.ldapSource],
      cache: { ttl: '1h', refreshAhead: 0 },
      // The bulk rules of the other benches, with their NFS volumes as inline CSI ones.
      home: { ...bulkMountRules.home, volume: csi(bulkMountRules.home.volume.nfs.server) },
      data: bulkMountRules.data.map((rule) => ({ ...rule, volume: csi(rule.volume.nfs.server) })),
    }),
  );
  return file;
}

/**
 * The plain hub's hub.extraConfig: what a site without idmount writes to get the same pod, the
 * identity and volumes of one plan (`plan`, a bulk user's) fixed for everyone, the home path
 * templated per user.
 */
function staticExtraConfig(plan: KubeObject): string {
  const volumes: Record<string, KubeObject> = {};
  const mounts: Record<string, KubeObject> = {};
  for (const volume of plan.volumes as KubeObject[]) {
    const share: string = volume.csi.volumeAttributes.share;
    const templated = share.startsWith('/export/home/') ? '/export/home/{username}' : share;
    volumes[volume.name] = {
      ...volume,
      csi: { ...volume.csi, volumeAttributes: { ...volume.csi.volumeAttributes, share: templated } },
    };
  }
  for (const mount of plan.volumeMounts as KubeObject[]) mounts[mount.name] = mount;
  const py = (v: unknown) => `json.loads(${JSON.stringify(JSON.stringify(v))})`;
  return [
    'import json',
    `c.KubeSpawner.uid = ${plan.uid}`,
    `c.KubeSpawner.gid = ${plan.gid}`,
    `c.KubeSpawner.supplemental_gids = ${py(plan.supplementalGids)}`,
    'c.KubeSpawner.fs_gid = None',
    'c.KubeSpawner.privileged = False',
    'c.KubeSpawner.allow_privilege_escalation = False',
    `c.KubeSpawner.container_security_context = ${py({
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    })}`,
    `c.KubeSpawner.pod_security_context = ${py({
      runAsNonRoot: true,
      supplementalGroupsPolicy: 'Strict',
      seccompProfile: { type: 'RuntimeDefault' },
    })}`,
    `c.KubeSpawner.volumes.update(${py(volumes)})`,
    `c.KubeSpawner.volume_mounts.update(${py(mounts)})`,
    '',
  ].join('\n');
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: with 25 samples, p99 is the largest.
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
};

interface Side {
  name: string;
  hub: RunningHub;
  namespace: string;
}

let stopRetries = 0;

/** One spawn: POST …/server, the pod's ADDED event, then DELETE and the pod gone. Returns ms. */
async function spawnOnce(side: Side, watch: PodWatch, user: string): Promise<number> {
  const pod = `jupyter-${user}`;
  const added = watch.next(side.namespace, pod, 'ADDED', 60_000);
  added.catch(() => undefined);
  const started = performance.now();
  const res = await side.hub.api('POST', `/users/${user}/server`);
  if (res.status !== 202 && res.status !== 201) {
    throw new Error(`${side.name}: spawn of ${user} answered ${res.status} ${JSON.stringify(res.body)}`);
  }
  let event: Awaited<typeof added>;
  try {
    event = await added;
  } catch (err) {
    throw new Error(`${side.name}: ${(err as Error).message}\n--- hub log:\n${side.hub.logTail(4000)}`);
  }
  const ms = event.at - started;
  const deleted = watch.next(side.namespace, pod, 'DELETED', 60_000);
  deleted.catch(() => undefined);
  // The spawn is still pending (the home claim stays unbound: no pod runs), so the stop interrupts
  // it; right after the pod's creation the hub may answer 500 while KubeSpawner's create call has
  // not returned yet: wait a moment, and ask again (bounded).
  await new Promise((r) => setTimeout(r, 300));
  for (let attempt = 1; ; attempt++) {
    const stop = await side.hub.api('DELETE', `/users/${user}/server`);
    if ([202, 204].includes(stop.status)) break;
    if (attempt >= 10) {
      throw new Error(`${side.name}: stop of ${user} answered ${stop.status} ${JSON.stringify(stop.body)}`);
    }
    stopRetries += 1;
    await new Promise((r) => setTimeout(r, 500));
  }
  await deleted;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const model = await side.hub.api('GET', `/users/${user}`);
    if (model.body.pending === null && Object.keys(model.body.servers ?? {}).length === 0) break;
    if (Date.now() > deadline) throw new Error(`${side.name}: ${user}'s server did not stop`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return ms;
}

export async function spawnLatencyBench(tools: SpawnBenchTools) {
  const { log, fmt } = tools;
  log(`spawn latency: starting a Kubernetes control plane`);
  const kube: RunningKube = await startKube();
  const hubs: RunningHub[] = [];
  let watch: PodWatch | undefined;
  try {
    const idmount = await tools.server('idmount.ts', { BENCH_CONFIG: idmountConfig(tools) });
    const planOf = async (user: string) => {
      const res = await fetch(`${idmount}/users/${user}/spawn-plan`, {
        headers: { authorization: `Bearer ${tools.token}` },
      });
      if (res.status !== 200) throw new Error(`spawn-plan for ${user}: ${res.status}`);
      return (await res.json()) as KubeObject;
    };
    const sample = await planOf('user9999');
    const site = mergeValues(z2jhDefaults(), {
      singleuser: { fsGid: null, extraPodConfig: { enableServiceLinks: false } },
    });
    const sides: Record<'idmount' | 'plain', Side> = {} as never;
    for (const name of ['idmount', 'plain'] as const) {
      const namespace = `bench-spawn-${name}`;
      await kube.client.createPodSecurityNamespace(namespace, 'restricted');
      const values =
        name === 'idmount'
          ? mergeValues(site, renderExtraConfig(idmount))
          : mergeValues(site, { hub: { extraConfig: { static: staticExtraConfig(sample) } } });
      log(`spawn latency: starting the ${name} hub`);
      const hub = await startHub({
        kubeconfig: kube.kubeconfig,
        namespace,
        values,
        env: { IDMOUNT_TOKEN: tools.token },
      });
      hubs.push(hub);
      sides[name] = { name, hub, namespace };
    }
    watch = await watchPods(kube.kubeconfig);

    const users = {
      warm: Array.from({ length: SPAWNS }, (_, i) => `user${2000 + i}`),
      cold: Array.from({ length: SPAWNS }, (_, i) => `user${1000 + i}`),
      plain: Array.from({ length: SPAWNS }, (_, i) => `user${3000 + i}`),
      warmup: Array.from({ length: WARMUP }, (_, i) => `user${9000 + i}`),
    };
    for (const [name, list] of [
      ['idmount', [...users.warm, ...users.cold, ...users.warmup]],
      ['plain', [...users.plain, ...users.warmup]],
    ] as const) {
      const res = await sides[name].hub.api('POST', '/users', { usernames: list });
      if (res.status !== 201) throw new Error(`creating users in the ${name} hub: ${res.status}`);
    }
    // Discarded spawns: each hub's first spawns start KubeSpawner's client and reflectors.
    for (const user of users.warmup) {
      await spawnOnce(sides.idmount, watch, user);
      await spawnOnce(sides.plain, watch, user);
    }
    // The warm users are in idmount's cache (the hub's own token, one request each).
    for (const user of users.warm) await planOf(user);

    const times = { warm: [] as number[], cold: [] as number[], plain: [] as number[] };
    log(`spawn latency: ${SPAWNS} spawns of each kind, one at a time`);
    for (let i = 0; i < SPAWNS; i++) {
      const kinds = (['warm', 'cold', 'plain'] as const)
        .map((k) => ({ k, r: Math.random() }))
        .sort((a, b) => a.r - b.r)
        .map(({ k }) => k);
      for (const kind of kinds) {
        const side = kind === 'plain' ? sides.plain : sides.idmount;
        times[kind].push(await spawnOnce(side, watch, users[kind][i] as string));
      }
    }
    const stats = (xs: number[]) => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) });
    const [warm, cold, plain] = [stats(times.warm), stats(times.cold), stats(times.plain)];
    const signed = (n: number) => `${n >= 0 ? '+' : '−'}${fmt(Math.abs(n), 1)}`;
    const row = (label: string, s: { p50: number; p99: number }, target: number) => [
      `Spawn latency, hub POST …/server → pod in the API server, p50 / p99 (ms), ${label}, ${SPAWNS} users`,
      `${fmt(s.p50, 1)} / ${fmt(s.p99, 1)}`,
      `${fmt(plain.p50, 1)} / ${fmt(plain.p99, 1)} (plain KubeSpawner, same volumes static)`,
      `${signed(s.p50 - plain.p50)} / ${signed(s.p99 - plain.p99)} ms (p50 ×${fmt(s.p50 / plain.p50, 2)})`,
      `≤ +${target} ms at p50`,
      s.p50 - plain.p50 <= target ? 'met' : 'missed',
    ];
    const rows = [
      row('idmount cache warm', warm, WARM_TARGET_MS),
      row('idmount cache cold (LDAP)', cold, COLD_TARGET_MS),
    ];
    const notes = [
      `Spawn latency: two JupyterHub 5.5 / KubeSpawner 7.1 hubs with the same z2jh values (dynamic home PVC, restricted namespace), one with idmount's hub.extraConfig, one with plain KubeSpawner and one plan's identity and ${sample.volumes.length} inline CSI volumes configured statically; a real kube-apiserver with kwok on loopback; idmount over slapd (10 000 users). Timed from just before the POST to the pod's ADDED event on a watch of pods (sub-millisecond clock; both sides pay the same watch delivery). Spawns one at a time, the three kinds in random order each round, after ${WARMUP} discarded spawns per hub; p99 is the largest of ${SPAWNS}. Cold: a user idmount never saw (the plan resolved from LDAP during the spawn); warm: the user's plan fetched once before.`,
      `Raw (ms, sorted): warm ${times.warm
        .sort((a, b) => a - b)
        .map((t) => fmt(t, 0))
        .join(' ')}; cold ${times.cold
        .sort((a, b) => a - b)
        .map((t) => fmt(t, 0))
        .join(' ')}; plain ${times.plain
        .sort((a, b) => a - b)
        .map((t) => fmt(t, 0))
        .join(' ')}.`,
    ];
    if (stopRetries > 0)
      notes.push(`Stops asked again after an error from the hub: ${stopRetries} (not timed).`);
    return { rows, notes };
  } finally {
    watch?.close();
    for (const hub of hubs) await hub.stop();
    await kube.stop();
  }
}
