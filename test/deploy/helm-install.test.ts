// The chart installed for real: `helm install --wait` of helm-chart/idmount (ci/default-values.yaml)
// on a real kube-apiserver (test/harness/kube.ts) into a namespace enforcing Pod Security
// `restricted`. The API server admits every object and every pod the chart makes, the scheduler
// places them on the kwok node, and kwok reports the pods Running and Ready (no image is pulled,
// no container runs), so the Deployment becomes Available.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient, type KubeObject } from '../harness/kube.js';
import { CHART_DIR, CI_VALUES, helm } from './tools.js';

const kube = inject('kube');
const client = KubeClient.fromKubeconfig(kube.kubeconfig);
const NAMESPACE = `idmount-${randomBytes(3).toString('hex')}`;
const RELEASE = 'idmount';
const DEFAULT_VALUES = (CI_VALUES.find((v) => v.name === 'default') as { file: string }).file;

beforeAll(async () => {
  await client.createNamespace(NAMESPACE, {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
});

afterAll(async () => {
  await helm(['uninstall', RELEASE, '--namespace', NAMESPACE, '--kubeconfig', kube.kubeconfig]);
  await client.deleteNamespace(NAMESPACE);
  client.close();
});

/** What the ReplicaSets of the release say when they cannot create pods (e.g. a PodSecurity refusal). */
async function replicaFailures(): Promise<string[]> {
  const sets = await client.get(`/apis/apps/v1/namespaces/${NAMESPACE}/replicasets`);
  return sets.items.flatMap((rs: KubeObject) =>
    (rs.status?.conditions ?? [])
      .filter((c: KubeObject) => c.type === 'ReplicaFailure')
      .map((c: KubeObject) => `${rs.metadata.name}: ${c.message}`),
  );
}

describe('helm install on a namespace enforcing restricted', () => {
  it('installs with --wait and the Deployment becomes Available', { timeout: 180_000 }, async () => {
    const result = await helm([
      'install',
      RELEASE,
      CHART_DIR,
      '--namespace',
      NAMESPACE,
      '--kubeconfig',
      kube.kubeconfig,
      '--values',
      DEFAULT_VALUES,
      '--wait',
      '--timeout',
      '120s',
    ]);
    if (result.code !== 0) {
      const failures = await replicaFailures();
      throw new Error(
        `helm install failed (${result.code}):\n${result.stderr}\nReplicaSet failures:\n${failures.join('\n') || '(none)'}`,
      );
    }
    expect(result.stdout).toContain('STATUS: deployed');

    const deployment = await client.get(`/apis/apps/v1/namespaces/${NAMESPACE}/deployments/${RELEASE}`);
    expect(deployment.status.conditions).toContainEqual(
      expect.objectContaining({ type: 'Available', status: 'True' }),
    );
    expect(deployment.status.readyReplicas).toBe(deployment.spec.replicas);
    expect(await replicaFailures()).toEqual([]);

    const pods = await client.get(
      `/api/v1/namespaces/${NAMESPACE}/pods?labelSelector=${encodeURIComponent(`app.kubernetes.io/instance=${RELEASE}`)}`,
    );
    expect(pods.items).toHaveLength(deployment.spec.replicas);
    for (const pod of pods.items) {
      expect(pod.spec.nodeName).toBe(kube.nodeName);
      expect(pod.status.phase).toBe('Running');
      expect(pod.status.podIP).toMatch(/^127\./);
    }
  });
});
