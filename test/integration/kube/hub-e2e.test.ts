// End to end through a real JupyterHub (test/harness/jupyterhub.ts): the hub process with z2jh's
// config and the rendered hub.extraConfig, KubeSpawner talking to a real kube-apiserver (1.37,
// test/harness/kube.ts) in a namespace enforcing Pod Security "restricted", configurable-http-proxy
// started by the hub, a real idmount serving examples/restricted.yaml. A spawn is asked through the
// hub's REST API (the token of a service with admin:users and admin:servers; no browser login), and
// the assertions are on the pod the API server stored. kwok then marks the pod Running with a
// loopback IP, jupyterhub-singleuser plays its container there with the pod's environment, and the
// hub must report the server ready and route to it; stopping it through the API deletes the pod.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type PodWatch,
  type RunningHub,
  type RunningSingleuser,
  startHub,
  startSingleuser,
  watchPods,
} from '../../harness/jupyterhub.js';
import { KubeClient, type KubeObject } from '../../harness/kube.js';
import { mergeValues, renderExtraConfig, z2jhDefaults } from '../../harness/z2jh-values.js';
import { expectPlanIdentity } from '../../helpers/pods.js';
import { ROOT, type RunningService, serveIdmount } from '../../helpers/serve.js';

const kube = inject('kube');
const client = KubeClient.fromKubeconfig(kube.kubeconfig);
const suffix = randomBytes(3).toString('hex');
const NAMESPACE = `hub-e2e-${suffix}`;
const TOKEN = `hub-token-${randomBytes(12).toString('hex')}`;
const USER = 'alice';
const POD = `jupyter-${USER}`;
const PV = `hub-e2e-home-${suffix}`;

/** A site's values: a profile list (one profile tries root), extraPodConfig, z2jh's dynamic home PVC. */
const SITE = {
  singleuser: {
    extraPodConfig: { enableServiceLinks: false },
    profileList: [
      { display_name: 'Default', slug: 'default', default: true },
      {
        display_name: 'Bigger (and, wrongly, root)',
        slug: 'bigger',
        kubespawner_override: {
          cpu_limit: 2,
          uid: 0,
          extra_pod_config: { securityContext: { fsGroup: 0, runAsUser: 0 } },
        },
      },
    ],
  },
};

let idmount: RunningService;
let hub: RunningHub;
let watch: PodWatch;
let singleuser: RunningSingleuser | undefined;

beforeAll(async () => {
  idmount = await serveIdmount(join(ROOT, 'examples/restricted.yaml'), { IDMOUNT_HUB_TOKEN: TOKEN });
  await client.createPodSecurityNamespace(NAMESPACE, 'restricted');
  // The volume z2jh's home claim (claim-alice, made by KubeSpawner) binds to: pre-bound, no class.
  await client.create('/api/v1/persistentvolumes', {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: PV },
    spec: {
      capacity: { storage: '10Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: '',
      claimRef: { namespace: NAMESPACE, name: `claim-${USER}` },
      csi: { driver: 'nfs.csi.k8s.io', volumeHandle: `nfs-home.example.org#/export/hub-home/${suffix}` },
    },
  });
  const values = mergeValues(mergeValues(z2jhDefaults(), SITE), renderExtraConfig(idmount.url));
  watch = await watchPods(kube.kubeconfig);
  hub = await startHub({
    kubeconfig: kube.kubeconfig,
    namespace: NAMESPACE,
    values,
    env: { IDMOUNT_TOKEN: TOKEN },
  });
}, 120_000);

afterAll(async () => {
  await singleuser?.stop();
  await hub?.stop();
  watch?.close();
  await idmount?.stop();
  await client.deleteNamespace(NAMESPACE).catch(() => undefined);
  await client.delete(`/api/v1/persistentvolumes/${PV}`).catch(() => undefined);
  client.close();
});

async function plan(user: string): Promise<KubeObject> {
  const res = await fetch(`${idmount.url}/users/${user}/spawn-plan`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as KubeObject;
}

/** Polls the hub's user model until `done` holds (bounded). */
async function userUntil(what: string, done: (user: KubeObject) => boolean, timeoutMs = 60_000, name = USER) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await hub.api('GET', `/users/${name}`);
    if (res.status === 200 && done(res.body)) return res.body;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}: ${JSON.stringify(res.body)}\n--- hub log:\n${hub.logTail(6000)}` +
          (singleuser ? `\n--- singleuser log:\n${singleuser.logTail(3000)}` : ''),
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('a spawn through a real JupyterHub onto a real API server', () => {
  it('stores the plan’s pod under "restricted", runs it, reports it ready, and deletes it on stop', async () => {
    const expected = await plan(USER);
    expect((await hub.api('POST', `/users/${USER}`)).status).toBe(201);

    const spawned = await hub.api('POST', `/users/${USER}/server`, { profile: 'bigger' });
    expect(spawned.status, JSON.stringify(spawned.body)).toBe(202);
    await watch.next(NAMESPACE, POD, 'ADDED', 60_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- hub log:\n${hub.logTail(6000)}`);
    });
    const stored = await client.get(`/api/v1/namespaces/${NAMESPACE}/pods/${POD}`);

    // Identity: the plan's on the pod and on every container, whatever the profile said.
    const containers = expectPlanIdentity(stored, expected, { exact: true });
    expect(containers.map((c) => c.name).sort()).toEqual(['idmount-nss', 'notebook']);
    // The profile's other override and the site's extraPodConfig are kept.
    const notebook = stored.spec.containers.find((c: KubeObject) => c.name === 'notebook');
    expect(notebook.resources.limits.cpu).toBe('2');
    expect(stored.spec.enableServiceLinks).toBe(false);

    // Volumes: idmount's (inline CSI, under "restricted") next to z2jh's home claim.
    const volumes = Object.fromEntries(stored.spec.volumes.map((v: KubeObject) => [v.name, v]));
    for (const volume of expected.volumes as KubeObject[]) {
      expect(volumes[volume.name], volume.name).toMatchObject(volume);
    }
    expect(
      Object.values(volumes)
        .filter((v: KubeObject) => v.csi !== undefined)
        .map((v: KubeObject) => v.csi.volumeAttributes.share),
    ).toEqual(expect.arrayContaining(['/export/home/alice', '/data/visitor/mx1234', '/data/visitor/ih5678']));
    expect(volumes[`volume-${USER}`]).toEqual({
      name: `volume-${USER}`,
      persistentVolumeClaim: { claimName: `claim-${USER}` },
    });
    const mounts = Object.fromEntries(notebook.volumeMounts.map((m: KubeObject) => [m.mountPath, m]));
    expect(mounts['/home/jovyan'].name).toBe(`volume-${USER}`);
    for (const { readOnly, ...mount } of expected.volumeMounts as KubeObject[]) {
      // The API server leaves out readOnly: false.
      expect(mounts[mount.mountPath], mount.mountPath).toMatchObject(
        readOnly ? { ...mount, readOnly } : mount,
      );
      if (!readOnly) expect(mounts[mount.mountPath].readOnly).toBeUndefined();
    }
    expect(mounts['/etc/passwd']).toMatchObject({ name: 'idmount-nss', subPath: 'passwd', readOnly: true });

    // Completing the spawn: kwok runs the pod on a loopback IP, jupyterhub-singleuser plays the
    // container with the pod's environment, and the hub finds it and routes to it.
    const running = await client.waitFor(
      `pod ${POD} Running with an IP`,
      async () => {
        const pod = await client.get(`/api/v1/namespaces/${NAMESPACE}/pods/${POD}`);
        return pod.status?.phase === 'Running' && pod.status?.podIP ? pod : undefined;
      },
      60_000,
    );
    expect(running.spec.nodeName).toBe(kube.nodeName);
    expect(running.status.podIP).toMatch(/^127\.1\./);
    const env = Object.fromEntries(notebook.env.map((e: KubeObject) => [e.name, e.value]));
    expect(env.JUPYTERHUB_API_URL).toBe(`${hub.hubUrl}/hub/api`);
    expect(env.JUPYTERHUB_USER).toBe(USER);
    singleuser = await startSingleuser(running);
    expect(singleuser.url).toBe(`http://${running.status.podIP}:8888/user/${USER}/`);
    const ready = await userUntil('the server to be ready', (u) => u.servers?.['']?.ready === true, 45_000);
    expect(ready.servers[''].url).toBe(`/user/${USER}/`);
    expect(ready.servers[''].user_options).toEqual({ profile: 'bigger' });
    // Through the proxy the hub started, to the server on the pod's IP (jupyter_server's /api).
    const routed = await fetch(`${hub.url}/user/${USER}/api`);
    expect(routed.status).toBe(200);
    expect(await routed.json()).toHaveProperty('version');

    // Stopping it through the API deletes the pod.
    const stopped = await hub.api('DELETE', `/users/${USER}/server`);
    expect([202, 204]).toContain(stopped.status);
    await watch.next(NAMESPACE, POD, 'DELETED', 60_000);
    expect(await client.find(`/api/v1/namespaces/${NAMESPACE}/pods/${POD}`)).toBeUndefined();
    await userUntil('the server to be gone', (u) => Object.keys(u.servers ?? {}).length === 0, 30_000);
    await singleuser.stop();
    singleuser = undefined;
  }, 120_000);

  it('fails a spawn closed for a user without an identity: no pod, and the user’s sentence in the hub', async () => {
    const name = 'zed';
    expect((await hub.api('POST', `/users/${name}`)).status).toBe(201);
    const spawned = await hub.api('POST', `/users/${name}/server`);
    expect(spawned.status).toBe(202);
    await userUntil(
      'the failed spawn to end',
      (u) => u.pending === null && Object.keys(u.servers ?? {}).length === 0,
      30_000,
      name,
    );
    expect(hub.logTail(200_000)).toContain("No POSIX identity for the user 'zed' was found in the directory");
    await expect(watch.next(NAMESPACE, `jupyter-${name}`, 'ADDED', 1000)).rejects.toThrow(/no ADDED event/);
  }, 60_000);
});
