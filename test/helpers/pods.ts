// The identity invariant, asserted on a pod the API server stored: the pod's and every
// container's user, groups and privileges are the plan's, whatever a profile or the site set.
import { expect } from 'vitest';
import type { KubeObject } from '../harness/kube.js';

const RUNTIME_DEFAULT = { type: 'RuntimeDefault' };

/**
 * `exact`: each container's securityContext is exactly the plan's, with RuntimeDefault seccomp on
 * the pod and every container (no site profile in play); otherwise the identity keys must match
 * and a seccomp profile of the site's may stand.
 */
export function expectPlanIdentity(stored: KubeObject, plan: KubeObject, options: { exact?: boolean } = {}) {
  const psc = stored.spec.securityContext;
  expect(psc).toMatchObject({
    runAsUser: plan.uid,
    runAsGroup: plan.gid,
    runAsNonRoot: true,
    supplementalGroups: plan.supplementalGids,
    supplementalGroupsPolicy: 'Strict',
    ...(options.exact ? { seccompProfile: RUNTIME_DEFAULT } : {}),
  });
  expect(psc.fsGroup).toBeUndefined();
  const containers: KubeObject[] = [...stored.spec.containers, ...(stored.spec.initContainers ?? [])];
  expect(containers.length).toBeGreaterThanOrEqual(2);
  const identity = {
    runAsUser: plan.uid,
    runAsGroup: plan.gid,
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
  };
  for (const container of containers) {
    if (options.exact) {
      expect(container.securityContext, container.name).toEqual({
        ...identity,
        seccompProfile: RUNTIME_DEFAULT,
      });
    } else {
      expect(container.securityContext, container.name).toMatchObject({
        ...identity,
        seccompProfile: { type: expect.any(String) },
      });
    }
  }
  return containers;
}
