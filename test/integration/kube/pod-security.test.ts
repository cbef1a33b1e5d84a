// Pod Security admission on a real kube-apiserver (1.37, test/harness/kube.ts): which notebook
// pods a namespace enforcing `restricted` or `baseline` admits, for the volume kinds idmount plans
// (PVC with subPath, inline CSI, nfs, hostPath), and that an admitted pod is scheduled and runs on
// the kwok node with a loopback pod IP.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeApiError, KubeClient, type KubeObject, NODE_IP } from '../../harness/kube.js';

const kube = inject('kube');
const client = KubeClient.fromKubeconfig(kube.kubeconfig);
const suffix = randomBytes(3).toString('hex');
const RESTRICTED = `pss-restricted-${suffix}`;
const BASELINE = `pss-baseline-${suffix}`;
const HOMES_PV = `pss-homes-${suffix}`;

// No image is pulled: kwok plays the kubelet.
const IMAGE = 'idmount-test/notebook:1';

/** A notebook pod that satisfies `restricted`; `volumes` are mounted under /mnt/NAME. */
function restrictedPod(name: string, volumes: KubeObject[], extra: KubeObject = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
        ...extra.podSecurityContext,
      },
      containers: [
        {
          name: 'notebook',
          image: IMAGE,
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          volumeMounts: volumes.map((v) => ({
            name: v.name,
            mountPath: `/mnt/${v.name}`,
            ...(v.subPath === undefined ? {} : { subPath: v.subPath }),
          })),
        },
      ],
      volumes: volumes.map(({ subPath: _subPath, ...v }) => v),
    },
  };
}

const pvcVolume = { name: 'home', subPath: 'alice', persistentVolumeClaim: { claimName: 'homes' } };
const csiVolume = {
  name: 'data',
  csi: {
    driver: 'nfs.csi.k8s.io',
    volumeAttributes: { server: 'nfs.example.test', share: '/export/data', mountOptions: 'nfsvers=4.1' },
  },
};
const nfsVolume = { name: 'data', nfs: { server: 'nfs.example.test', path: '/export/data' } };
const hostPathVolume = { name: 'scratch', hostPath: { path: '/scratch', type: 'Directory' } };

const podsOf = (namespace: string) => `/api/v1/namespaces/${namespace}/pods`;

/** Creates the pod and returns the API server's refusal; fails if the pod was admitted. */
async function refusal(namespace: string, pod: KubeObject): Promise<KubeApiError> {
  try {
    await client.create(podsOf(namespace), pod);
  } catch (err) {
    if (err instanceof KubeApiError) return err;
    throw err;
  }
  throw new Error(`pod ${pod.metadata.name} was admitted in ${namespace}`);
}

function inLoopback(ip: string): boolean {
  const parts = ip.split('.').map(Number);
  return (
    parts.length === 4 && parts[0] === 127 && parts.every((n) => Number.isInteger(n) && n >= 0 && n < 256)
  );
}

async function waitRunning(namespace: string, name: string): Promise<KubeObject> {
  return client.waitFor(`pod ${namespace}/${name} Running`, async () => {
    const pod = await client.get(`${podsOf(namespace)}/${name}`);
    return pod.status?.phase === 'Running' && pod.status?.podIP ? pod : undefined;
  });
}

beforeAll(async () => {
  for (const [name, level] of [
    [RESTRICTED, 'restricted'],
    [BASELINE, 'baseline'],
  ] as const) {
    await client.createNamespace(name, {
      'pod-security.kubernetes.io/enforce': level,
      'pod-security.kubernetes.io/enforce-version': 'latest',
    });
  }
  // The claim the PVC pod mounts, bound to a CSI volume (as csi-driver-nfs provisions them), so
  // the scheduler can place that pod too.
  await client.create('/api/v1/persistentvolumes', {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: HOMES_PV },
    spec: {
      capacity: { storage: '1Ti' },
      accessModes: ['ReadWriteMany'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: '',
      mountOptions: ['nfsvers=4.1'],
      csi: {
        driver: 'nfs.csi.k8s.io',
        volumeHandle: `nfs.example.test#export/home#${suffix}`,
        volumeAttributes: { server: 'nfs.example.test', share: '/export/home' },
      },
    },
  });
  await client.create(`/api/v1/namespaces/${RESTRICTED}/persistentvolumeclaims`, {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'homes' },
    spec: {
      accessModes: ['ReadWriteMany'],
      storageClassName: '',
      volumeName: HOMES_PV,
      resources: { requests: { storage: '1Ti' } },
    },
  });
  // The ServiceAccount admission plugin refuses pods until the namespace's `default` exists.
  for (const namespace of [RESTRICTED, BASELINE]) {
    await client.waitFor(`ServiceAccount ${namespace}/default`, () =>
      client.find(`/api/v1/namespaces/${namespace}/serviceaccounts/default`),
    );
  }
});

afterAll(async () => {
  await Promise.all([RESTRICTED, BASELINE].map((ns) => client.deleteNamespace(ns)));
  await client.delete(`/api/v1/persistentvolumes/${HOMES_PV}`);
  client.close();
});

describe('a namespace enforcing restricted', () => {
  it('refuses a pod running as root, naming each rule it breaks', async () => {
    const pod = restrictedPod('as-root', [], {
      podSecurityContext: { runAsNonRoot: undefined, runAsUser: 0, runAsGroup: 0 },
    });
    pod.spec.containers[0].securityContext = {};
    const err = await refusal(RESTRICTED, pod);
    expect(err.status).toBe(403);
    expect(err.body.reason).toBe('Forbidden');
    expect(err.body.message).toBe(
      'pods "as-root" is forbidden: violates PodSecurity "restricted:latest": ' +
        'allowPrivilegeEscalation != false (container "notebook" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "notebook" must set securityContext.capabilities.drop=["ALL"]), ' +
        'runAsNonRoot != true (pod or container "notebook" must set securityContext.runAsNonRoot=true), ' +
        'runAsUser=0 (pod must not set runAsUser=0)',
    );
  });

  it('admits a restricted-compliant pod with a PVC volume (subPath); it is scheduled and runs', async () => {
    const stored = await client.create(podsOf(RESTRICTED), restrictedPod('pvc', [pvcVolume]));
    expect(stored.metadata.uid).toEqual(expect.any(String));
    const volume = stored.spec.volumes.find((v: KubeObject) => v.name === 'home');
    expect(volume.persistentVolumeClaim).toEqual({ claimName: 'homes' });
    expect(stored.spec.containers[0].volumeMounts).toContainEqual(
      expect.objectContaining({ name: 'home', subPath: 'alice' }),
    );
    const pod = await waitRunning(RESTRICTED, 'pvc');
    expect(pod.spec.nodeName).toBe(kube.nodeName);
    expect(inLoopback(pod.status.podIP)).toBe(true);
    const claim = await client.get(`/api/v1/namespaces/${RESTRICTED}/persistentvolumeclaims/homes`);
    expect(claim.status.phase).toBe('Bound');
  });

  it('admits a restricted-compliant pod with an inline CSI volume; kwok runs it on a loopback pod IP', async () => {
    const stored = await client.create(podsOf(RESTRICTED), restrictedPod('csi', [csiVolume]));
    expect(stored.spec.volumes.find((v: KubeObject) => v.name === 'data').csi.driver).toBe('nfs.csi.k8s.io');

    const pod = await waitRunning(RESTRICTED, 'csi');
    expect(pod.spec.nodeName).toBe(kube.nodeName);
    expect(pod.status.hostIP).toBe(NODE_IP);
    expect(inLoopback(pod.status.podIP)).toBe(true);
    expect(pod.status.podIP).toMatch(/^127\.1\.0\.\d+$/);
    expect(pod.status.podIPs).toEqual([{ ip: pod.status.podIP }]);
    expect(pod.status.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
    expect(pod.status.containerStatuses[0]).toMatchObject({ name: 'notebook', ready: true });
  });

  it('refuses an nfs volume', async () => {
    const err = await refusal(RESTRICTED, restrictedPod('nfs', [nfsVolume]));
    expect(err.status).toBe(403);
    expect(err.body.message).toBe(
      'pods "nfs" is forbidden: violates PodSecurity "restricted:latest": ' +
        'restricted volume types (volume "data" uses restricted volume type "nfs")',
    );
  });

  it('stores securityContext.supplementalGroupsPolicy: Strict and gives it back', async () => {
    const pod = restrictedPod('strict-groups', [], {
      podSecurityContext: { supplementalGroups: [2000, 2001], supplementalGroupsPolicy: 'Strict' },
    });
    await client.create(podsOf(RESTRICTED), pod);
    const stored = await client.get(`${podsOf(RESTRICTED)}/strict-groups`);
    expect(stored.spec.securityContext.supplementalGroupsPolicy).toBe('Strict');
    expect(stored.spec.securityContext.supplementalGroups).toEqual([2000, 2001]);

    // The field is known and validated, not merely carried along.
    const unknown = restrictedPod('bad-groups-policy', [], {
      podSecurityContext: { supplementalGroupsPolicy: 'Lax' },
    });
    const err = await refusal(RESTRICTED, unknown);
    expect(err.status).toBe(422);
    expect(err.body.message).toContain(
      'spec.securityContext.supplementalGroupsPolicy: Unsupported value: "Lax": supported values: "Merge", "Strict"',
    );
  });
});

describe('a namespace enforcing baseline', () => {
  it('admits the nfs volume restricted refuses', async () => {
    const stored = await client.create(podsOf(BASELINE), restrictedPod('nfs', [nfsVolume]));
    expect(stored.spec.volumes.find((v: KubeObject) => v.name === 'data').nfs).toEqual(nfsVolume.nfs);
  });

  it('refuses a hostPath volume', async () => {
    const err = await refusal(BASELINE, restrictedPod('host-path', [hostPathVolume]));
    expect(err.status).toBe(403);
    expect(err.body.message).toBe(
      'pods "host-path" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "scratch")',
    );
  });
});
