// z2jh values for the hubs the end-to-end tests and the spawn bench start (test/harness/jupyterhub.ts):
// the chart defaults that reach a user pod, a site's settings on top, and `idmount
// render-extra-config`'s fragment merged the way Helm merges values files.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import YAML from 'yaml';
import type { KubeObject } from './kube.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** z2jh 4.x's defaults for what reaches a user pod (its values.yaml), with blockWithIptables off. */
export function z2jhDefaults(): KubeObject {
  return {
    hub: { extraConfig: {}, consecutiveFailureLimit: 5 },
    singleuser: {
      image: { name: 'quay.io/jupyterhub/k8s-singleuser-sample', tag: '4.2.0', pullPolicy: null },
      startTimeout: 300,
      uid: 1000,
      fsGid: 100,
      events: true,
      cmd: 'jupyterhub-singleuser',
      defaultUrl: null,
      extraEnv: {},
      extraPodConfig: {},
      profileList: [],
      cpu: { limit: null, guarantee: null },
      memory: { limit: null, guarantee: '1G' },
      storage: {
        type: 'dynamic',
        extraLabels: {},
        extraVolumes: {},
        extraVolumeMounts: {},
        capacity: '10Gi',
        homeMountPath: '/home/jovyan',
        dynamic: {
          storageClass: null,
          pvcNameTemplate: 'claim-{user_server}',
          volumeNameTemplate: 'volume-{user_server}',
          storageAccessModes: ['ReadWriteOnce'],
        },
      },
      // z2jh's default is true; clusters enforcing "restricted" turn it off (docs/13).
      cloudMetadata: { blockWithIptables: false, ip: '169.254.169.254' },
    },
  };
}

const isObject = (v: unknown): v is KubeObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's merge of values files: maps merge key by key, anything else (lists too) is replaced. */
export function mergeValues(base: KubeObject, over: KubeObject): KubeObject {
  const out: KubeObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isObject(value) && isObject(out[key]) ? mergeValues(out[key], value) : value;
  }
  return out;
}

/** `idmount render-extra-config --url URL` as it prints it, parsed. */
export function renderExtraConfig(url: string, ...args: string[]): KubeObject {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'render-extra-config', '--url', url, ...args],
    { cwd: ROOT, encoding: 'utf8' },
  );
  return YAML.parse(out) as KubeObject;
}
