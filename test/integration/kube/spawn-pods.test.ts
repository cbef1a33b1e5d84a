// The pods idmount's spawner builds, sent to a real kube-apiserver (1.37, test/harness/kube.ts):
// the real JupyterHub and KubeSpawner build each pod (test/hub/render_pod.py, the rendered
// hub.extraConfig exec'd as z2jh's loader does) from a real idmount's plan, and the assertions are
// on the pod the API server stored. A namespace enforcing Pod Security "restricted" admits the
// pods of the restricted-ready example config (csi and pvc volumes), whatever a profile or the
// site tries on identity; the embedded default's nfs volumes need "baseline", as check-config says.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeApiError, KubeClient, type KubeObject } from '../../harness/kube.js';
import { expectPlanIdentity } from '../../helpers/pods.js';
import { ROOT, type RunningService, scratchDir, serveIdmount } from '../../helpers/serve.js';

const kube = inject('kube');
const client = KubeClient.fromKubeconfig(kube.kubeconfig);
const suffix = randomBytes(3).toString('hex');
const RESTRICTED = `spawn-restricted-${suffix}`;
const BASELINE = `spawn-baseline-${suffix}`;
const TOKEN = `hub-token-${randomBytes(12).toString('hex')}`;
const PYTHON = join(ROOT, '.venv/bin/python');

const podsOf = (namespace: string) => `/api/v1/namespaces/${namespace}/pods`;

function renderValues(url: string, dir: string): string {
  const file = join(dir, 'values.yaml');
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'render-extra-config', '--url', url],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  writeFileSync(file, out);
  return file;
}

/** The pod the hub's spawner builds for `user` (KubeSpawner with the rendered extraConfig). */
function podFor(values: string, user: string, options: KubeObject = {}): KubeObject {
  const out = execFileSync(PYTHON, ['test/hub/render_pod.py', values, user, JSON.stringify(options)], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, IDMOUNT_TOKEN: TOKEN, PYTHONDONTWRITEBYTECODE: '1' },
  });
  const pod = JSON.parse(out) as KubeObject;
  if (pod.error) throw new Error(`the spawn failed: ${pod.error}`);
  // The name KubeSpawner gives; kept unique per test.
  pod.metadata.name = `${pod.metadata.name}-${randomBytes(2).toString('hex')}`;
  delete pod.metadata.namespace;
  return pod;
}

async function plan(service: RunningService, user: string): Promise<KubeObject> {
  const res = await fetch(`${service.url}/users/${user}/spawn-plan`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return (await res.json()) as KubeObject;
}

async function admitted(namespace: string, pod: KubeObject): Promise<KubeObject> {
  await client.create(podsOf(namespace), pod);
  return client.get(`${podsOf(namespace)}/${pod.metadata.name}`);
}

async function refusal(namespace: string, pod: KubeObject): Promise<string> {
  try {
    await client.create(podsOf(namespace), pod);
  } catch (err) {
    if (err instanceof KubeApiError) return err.message;
    throw err;
  }
  throw new Error(`pod ${pod.metadata.name} was admitted in ${namespace}`);
}

let restricted: RunningService;
let embedded: RunningService;
let restrictedValues: string;
let embeddedValues: string;

beforeAll(async () => {
  if (!existsSync(PYTHON))
    throw new Error('the Python venv with JupyterHub is missing: run `npm run test:deps`');
  const dir = scratchDir('idmount-kube-spawn-');
  restricted = await serveIdmount(join(ROOT, 'examples/restricted.yaml'), { IDMOUNT_HUB_TOKEN: TOKEN });
  embedded = await serveIdmount(join(ROOT, 'examples/demo-config.yaml'));
  restrictedValues = renderValues(restricted.url, dir);
  embeddedValues = renderValues(embedded.url, scratchDir('idmount-kube-spawn-'));
  for (const [name, level] of [
    [RESTRICTED, 'restricted'],
    [BASELINE, 'baseline'],
  ] as const) {
    await client.createPodSecurityNamespace(name, level);
  }
});

afterAll(async () => {
  await restricted?.stop();
  await embedded?.stop();
  for (const namespace of [RESTRICTED, BASELINE])
    await client.deleteNamespace(namespace).catch(() => undefined);
});

describe('spawned pods on a real API server', () => {
  it('admits the restricted-ready config’s pod under "restricted", with the plan’s identity as stored', async () => {
    const expected = await plan(restricted, 'alice');
    const stored = await admitted(RESTRICTED, podFor(restrictedValues, 'alice', { namespace: RESTRICTED }));
    expectPlanIdentity(stored, expected);
    const volumes = stored.spec.volumes.filter((v: KubeObject) => v.csi !== undefined);
    expect(volumes.map((v: KubeObject) => v.csi.volumeAttributes.share)).toContain('/export/home/alice');
  });

  it.each([
    [
      'a profile setting root, fsGroup 0 and group 0 through extra_pod_config',
      { profile: { extra_pod_config: { securityContext: { fsGroup: 0, supplementalGroups: [0] } }, uid: 0 } },
    ],
    [
      "the site's own seccomp hardening in extra_pod_config",
      { site: { extra_pod_config: { securityContext: { seccompProfile: { type: 'RuntimeDefault' } } } } },
    ],
    [
      'a privileged init container and extra container from the site',
      {
        site: {
          init_containers: [
            { name: 'setup', image: 'busybox', securityContext: { runAsUser: 0, privileged: true } },
          ],
          extra_containers: [{ name: 'side', image: 'busybox', securityContext: { runAsUser: 0 } }],
        },
      },
    ],
  ])('keeps the identity and admission with %s', async (_, options) => {
    const expected = await plan(restricted, 'alice');
    const stored = await admitted(
      RESTRICTED,
      podFor(restrictedValues, 'alice', { ...options, namespace: RESTRICTED }),
    );
    expectPlanIdentity(stored, expected);
  });

  it('refuses the embedded default’s nfs pod under "restricted" and admits it under "baseline", as check-config says', async () => {
    const message = await refusal(RESTRICTED, podFor(embeddedValues, 'alice', { namespace: RESTRICTED }));
    expect(message).toMatch(/restricted volume types .* "nfs"/);
    const expected = await plan(embedded, 'alice');
    const stored = await admitted(BASELINE, podFor(embeddedValues, 'alice', { namespace: BASELINE }));
    expectPlanIdentity(stored, expected);
  });

  it('refuses a control pod running as root in the same namespace (enforcement is on)', async () => {
    const pod = podFor(restrictedValues, 'alice', { namespace: RESTRICTED });
    pod.spec.securityContext.runAsUser = 0;
    for (const c of pod.spec.containers) c.securityContext.runAsUser = 0;
    expect(await refusal(RESTRICTED, pod)).toMatch(/runAsUser=0/);
  });
});
