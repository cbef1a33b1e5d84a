// vitest globalSetup of the `kube` project: one Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, a kwok node; see kube.ts) for every kube test file,
// handed to the files through `provide('kube')`. It starts only when one of those files runs.
// IDMOUNT_TEST_KUBECONFIG points the tests at a control plane already running (one started by this
// harness with IDMOUNT_TEST_KUBE_KEEP=1 keeps its temp dir and kubeconfig), to iterate faster.
import type { TestProject } from 'vitest/node';
import { type KubeControlPlane, KWOK_NODE, startKube } from './kube.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kube: KubeControlPlane;
  }
}

export default async function setup(project: TestProject) {
  const kubeconfig = process.env.IDMOUNT_TEST_KUBECONFIG;
  if (kubeconfig !== undefined) {
    project.provide('kube', { kubeconfig, server: '', nodeName: KWOK_NODE });
    return;
  }
  const kube = await startKube({ keepDir: process.env.IDMOUNT_TEST_KUBE_KEEP === '1' });
  console.log(`Kubernetes control plane ready at ${kube.server} after ${(kube.startMs / 1000).toFixed(1)} s`);
  project.provide('kube', { kubeconfig: kube.kubeconfig, server: kube.server, nodeName: kube.nodeName });
  return async () => {
    await kube.stop();
  };
}
