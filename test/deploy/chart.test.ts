// The Helm chart: lint and render every ci/*-values.yaml, validate each rendered object against
// the Kubernetes API schemas offline, and check what the chart promises (secure pods, probes,
// NetworkPolicy selectors, checksum-rolled config, precise errors for missing values).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseConfig } from '../../src/settings.js';
import {
  CHART_DIR,
  CI_VALUES,
  find,
  helm,
  type K8sObject,
  KUBERNETES_VERSION,
  renderChart,
  renderChartRaw,
  renderNotes,
  validateObjects,
} from './tools.js';

const ciFile = (name: string) => join(CHART_DIR, 'ci', `${name}-values.yaml`);
const SELECTOR = { 'app.kubernetes.io/name': 'idmount', 'app.kubernetes.io/instance': 'idmount' };

/** The numeric USER of the Dockerfile's runtime stage: the chart's runAsUser must match it. */
function dockerfileUser(): { uid: number; gid: number } {
  const dockerfile = readFileSync(join(CHART_DIR, '../../Dockerfile'), 'utf8');
  const users = [...dockerfile.matchAll(/^USER\s+(\d+):(\d+)\s*$/gm)];
  const last = users.at(-1);
  if (last === undefined) throw new Error('the Dockerfile has no numeric USER uid:gid');
  return { uid: Number(last[1]), gid: Number(last[2]) };
}

/** A throwaway CA certificate for configs whose caFile must hold one (openssl: npm run test:deps). */
function selfSignedCertificate(path: string) {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=idmount chart test',
      '-days',
      '1',
      '-keyout',
      `${path}.key`,
      '-out',
      path,
    ],
    { stdio: 'ignore' },
  );
}

const rendered = new Map<string, K8sObject[]>();
beforeAll(async () => {
  for (const { name, file } of CI_VALUES) rendered.set(name, await renderChart([file]));
});
const objectsOf = (name: string) => rendered.get(name) as K8sObject[];

describe('helm lint', () => {
  it.each(CI_VALUES)(
    'passes with ci/$name-values.yaml (values checked against values.schema.json)',
    async ({ file }) => {
      const result = await helm(['lint', CHART_DIR, '--strict', '--values', file]);
      expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(result.code).toBe(0);
    },
  );

  it("passes on values.yaml alone: the defaults satisfy the chart's own schema", async () => {
    const result = await helm(['lint', CHART_DIR, '--strict']);
    expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('fails on a values file the schema refuses, naming the key', async () => {
    const result = await helm(['lint', CHART_DIR, '--strict', '--set', 'service.port=http']);
    expect(result.code).not.toBe(0);
    expect(result.stderr + result.stdout).toMatch(/service\.port|\/service\/port/);
  });
});

describe(`rendered objects against the Kubernetes ${KUBERNETES_VERSION} API schemas`, () => {
  const cases = [
    {
      name: 'default',
      kinds: [
        'ConfigMap',
        'Deployment',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'Secret',
        'Service',
        'ServiceAccount',
      ],
      why: 'the chart makes its own Secret from secrets.files',
    },
    {
      name: 'ldap',
      kinds: ['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount'],
      why: 'existingSecret: the chart makes no Secret',
    },
    {
      name: 'keycloak',
      kinds: [
        'ConfigMap',
        'Deployment',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'Secret',
        'Service',
        'ServiceAccount',
      ],
      why: 'the client secret comes from secrets.files',
    },
    {
      name: 'ha',
      kinds: [
        'ConfigMap',
        'Deployment',
        'HorizontalPodAutoscaler',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'Service',
        'ServiceAccount',
        'ServiceMonitor',
      ],
      why: 'autoscaling and the ServiceMonitor are on',
    },
    {
      name: 'shared-cache',
      kinds: ['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount'],
      why: 'the shared tier and the directory both use Secrets the site manages',
    },
  ];
  it.each(cases)(
    'ci/$name-values.yaml renders exactly its objects ($why), each valid',
    async ({ name, kinds }) => {
      const objects = objectsOf(name);
      expect(objects.map((o) => o.kind).sort()).toEqual(kinds);
      const report = await validateObjects(objects);
      expect(report.problems).toEqual([]);
      expect(report.passed.sort()).toEqual(
        objects.map((o) => `${o.kind.toLowerCase()}/${o.metadata.name}`).sort(),
      );
    },
  );

  it('the validator rejects an unknown field (strict schemas, so a typo in a template cannot pass)', async () => {
    const deployment = structuredClone(find(objectsOf('default'), 'Deployment'));
    deployment.spec.template.spec.containers[0].readinesProbe = {
      httpGet: { path: '/readyz', port: 'http' },
    };
    const report = await validateObjects([deployment]);
    expect(report.problems.join('\n')).toMatch(/'readinesProbe' was unexpected/);
  });

  it('the ServiceMonitor validator rejects a ServiceMonitor without a selector', async () => {
    const monitor = structuredClone(find(objectsOf('ha'), 'ServiceMonitor'));
    delete monitor.spec.selector;
    const report = await validateObjects([monitor]);
    expect(report.problems.join('\n')).toMatch(/selector/);
  });
});

describe('the config the chart renders is one the service accepts', () => {
  it.each(CI_VALUES)(
    "ci/$name-values.yaml: config.yaml passes the service's config validation",
    ({ name }) => {
      // The pod's mount paths, moved to a temporary directory holding placeholder secret files.
      const dir = mkdtempSync(join(tmpdir(), 'idmount-chart-config-'));
      try {
        const objects = objectsOf(name);
        const text = (find(objects, 'ConfigMap').data['config.yaml'] as string)
          .replaceAll('/etc/idmount/secrets/', `${dir}/secrets/`)
          .replaceAll('/etc/idmount/shared-cache/', `${dir}/secrets/`)
          .replaceAll('/etc/idmount/config/', `${dir}/config/`);
        mkdirSync(join(dir, 'secrets'));
        for (const [, file] of text.matchAll(/\/secrets\/([\w.-]+)/g)) {
          const path = join(dir, 'secrets', file as string);
          if (path.endsWith('.pem')) selfSignedCertificate(path);
          else writeFileSync(path, path.endsWith('.sha256') ? 'a'.repeat(64) : 'placeholder');
        }
        expect(() => parseConfig(YAML.parse(text), `ci/${name}-values.yaml`)).not.toThrow();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('the pod is secure by default', () => {
  const { uid, gid } = dockerfileUser();
  it.each(CI_VALUES)(
    'ci/$name-values.yaml: non-root numeric uid of the Dockerfile, seccomp, no escalation, read-only root',
    ({ name }) => {
      const pod = find(objectsOf(name), 'Deployment').spec.template.spec;
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: uid,
        runAsGroup: gid,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.automountServiceAccountToken).toBe(false);
      const [container] = pod.containers;
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        privileged: false,
        capabilities: { drop: ['ALL'] },
      });
      const tmp = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
      expect(pod.volumes.find((v: { name: string }) => v.name === tmp.name)).toHaveProperty('emptyDir');
    },
  );

  it('the ServiceAccount mounts no API token', () => {
    expect(find(objectsOf('default'), 'ServiceAccount').automountServiceAccountToken).toBe(false);
  });
});

describe('probes and ports', () => {
  it.each(CI_VALUES)(
    'ci/$name-values.yaml: liveness on /healthz, readiness on /readyz, both on the port the config listens on',
    ({ name }) => {
      const objects = objectsOf(name);
      const [container] = find(objects, 'Deployment').spec.template.spec.containers;
      expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      const port = container.ports.find((p: { name: string }) => p.name === 'http');
      const config = YAML.parse(find(objects, 'ConfigMap').data['config.yaml']);
      expect(config.server).toMatchObject({ host: '0.0.0.0', port: port.containerPort });
      expect(find(objects, 'Service').spec.ports[0]).toMatchObject({ name: 'http', targetPort: 'http' });
      expect(container.env).toContainEqual({
        name: 'IDMOUNT_CONFIG',
        value: '/etc/idmount/config/config.yaml',
      });
    },
  );

  it("the chart's listen address wins over one given in config (the probes depend on it)", async () => {
    const objects = await renderChart([ciFile('default')], {
      'config.server': { host: '127.0.0.1', port: 9999 },
    });
    expect(YAML.parse(find(objects, 'ConfigMap').data['config.yaml']).server).toEqual({
      host: '0.0.0.0',
      port: 8080,
    });
  });
});

describe('selectors carry only name and instance', () => {
  it.each(CI_VALUES)(
    'ci/$name-values.yaml: Deployment, Service, PDB and NetworkPolicy select by name + instance',
    ({ name }) => {
      const objects = objectsOf(name);
      expect(find(objects, 'Deployment').spec.selector.matchLabels).toEqual(SELECTOR);
      expect(find(objects, 'Service').spec.selector).toEqual(SELECTOR);
      expect(find(objects, 'PodDisruptionBudget').spec.selector.matchLabels).toEqual(SELECTOR);
      expect(find(objects, 'NetworkPolicy').spec.podSelector.matchLabels).toEqual(SELECTOR);
      expect(find(objects, 'Deployment').spec.template.metadata.labels).toMatchObject(SELECTOR);
    },
  );
});

describe('NetworkPolicy', () => {
  const cases = [
    {
      name: 'default',
      why: 'modern z2jh labels of release "jupyterhub" in the same namespace; DNS only (a file source needs no directory)',
      hub: {
        podSelector: {
          matchLabels: { 'app.kubernetes.io/component': 'hub', 'app.kubernetes.io/instance': 'jupyterhub' },
        },
      },
      extraPeers: 0,
      directoryPorts: [],
      directoryPeers: undefined,
    },
    {
      name: 'ldap',
      why: 'ldaps:// URLs open 636, only to the configured domain controllers',
      hub: {
        podSelector: {
          matchLabels: { 'app.kubernetes.io/component': 'hub', 'app.kubernetes.io/instance': 'jhub' },
        },
      },
      extraPeers: 0,
      directoryPorts: [636],
      directoryPeers: [{ ipBlock: { cidr: '10.20.0.10/32' } }, { ipBlock: { cidr: '10.20.0.11/32' } }],
    },
    {
      name: 'keycloak',
      why: 'the hub lives in namespace jhub; https issuers open 443; an ops namespace may call too',
      hub: {
        podSelector: {
          matchLabels: { 'app.kubernetes.io/component': 'hub', 'app.kubernetes.io/instance': 'jupyterhub' },
        },
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'jhub' } },
      },
      extraPeers: 1,
      directoryPorts: [443],
      directoryPeers: undefined,
    },
    {
      name: 'ha',
      why: 'legacy labels (component, release) for a z2jh 3.x hub; explicit directory ports',
      hub: { podSelector: { matchLabels: { component: 'hub', release: 'hub-prod' } } },
      extraPeers: 1,
      directoryPorts: [636, 3269],
      directoryPeers: undefined,
    },
    {
      name: 'shared-cache',
      why: 'ldaps 636 to any destination, and the Redis port of sharedCache.url only to the Redis pods',
      hub: {
        podSelector: {
          matchLabels: { 'app.kubernetes.io/component': 'hub', 'app.kubernetes.io/instance': 'jhub' },
        },
      },
      extraPeers: 0,
      directoryPorts: [636],
      directoryPeers: undefined,
      more: [
        {
          ports: [{ port: 6380, protocol: 'TCP' }],
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'redis' } },
              podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } },
            },
          ],
        },
      ],
    },
  ];
  it.each(cases)(
    'ci/$name-values.yaml: $why',
    ({ name, hub, extraPeers, directoryPorts, directoryPeers, more }) => {
      const policy = find(objectsOf(name), 'NetworkPolicy').spec;
      expect(policy.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(policy.ingress).toHaveLength(1);
      const [ingress] = policy.ingress;
      expect(ingress.ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
      expect(ingress.from[0]).toEqual(hub);
      expect(ingress.from).toHaveLength(1 + extraPeers);
      const [dns, directories, ...rest] = policy.egress;
      expect(dns).toEqual({
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      });
      if (directoryPorts.length === 0) {
        expect(directories).toBeUndefined();
      } else {
        expect(directories.ports).toEqual(directoryPorts.map((port) => ({ port, protocol: 'TCP' })));
        expect(directories.to).toEqual(directoryPeers);
      }
      expect(rest).toEqual(more ?? []);
    },
  );

  it('turned off, it renders no NetworkPolicy and needs no z2jh release name', async () => {
    const objects = await renderChart([ciFile('default')], {
      'networkPolicy.enabled': false,
      'networkPolicy.jupyterhub.releaseName': null,
    });
    expect(objects.map((o) => o.kind)).not.toContain('NetworkPolicy');
  });

  const derived = [
    { urls: ['ldap://ldap.example.org'], ports: [389], why: 'ldap:// defaults to 389' },
    {
      urls: ['ldaps://dc1.example.org:3269', 'ldaps://dc2.example.org'],
      ports: [3269, 636],
      why: 'an explicit port wins',
    },
    { urls: ['ldaps://[2001:db8::1]:1636'], ports: [1636], why: 'an IPv6 literal with a port' },
  ];
  it.each(derived)('directory ports derived from source URLs: $why', async ({ urls, ports }) => {
    const objects = await renderChart([ciFile('ldap')], {
      'config.sources': [{ name: 'dir', type: 'ldap', urls }],
      'networkPolicy.egress.directories.to': [],
    });
    const egress = find(objects, 'NetworkPolicy').spec.egress[1];
    expect(egress).toEqual({ ports: [...ports].sort().map((port) => ({ port, protocol: 'TCP' })) });
  });
});

describe('checksum annotations roll the pods when config or secrets change', () => {
  const annotations = async (setJson: Record<string, unknown>) =>
    find(await renderChart([ciFile('default')], setJson), 'Deployment').spec.template.metadata
      .annotations as Record<string, string>;
  const cases = [
    { change: 'nothing', setJson: {}, config: false, secret: false },
    { change: 'a config key', setJson: { 'config.cache': { ttl: '10m' } }, config: true, secret: false },
    {
      change: 'a config file',
      setJson: { 'configFiles.ca\\.pem': 'another CA' },
      config: true,
      secret: false,
    },
    {
      change: 'a secret file',
      setJson: { 'secrets.files.hub-token\\.sha256': 'f'.repeat(64) },
      config: false,
      secret: true,
    },
    {
      change: 'the chart-made Secret for an existingSecret',
      setJson: { 'secrets.existingSecret': 'idmount-secrets' },
      config: false,
      secret: true,
    },
    {
      change: 'the scrape settings',
      setJson: { 'serviceMonitor.interval': '1m' },
      config: false,
      secret: false,
    },
  ];
  it.each(cases)(
    'changing $change changes checksum/config: $config, checksum/secret: $secret',
    async ({ setJson, config, secret }) => {
      const before = await annotations({});
      const after = await annotations(setJson);
      expect(before['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
      expect(before['checksum/secret']).toMatch(/^[0-9a-f]{64}$/);
      expect(after['checksum/config'] !== before['checksum/config']).toBe(config);
      expect(after['checksum/secret'] !== before['checksum/secret']).toBe(secret);
    },
  );
});

describe('the shared cache tier', () => {
  it("mounts sharedCache.existingSecret read-only, apart from `secrets`, where the config's cache.shared points", () => {
    const objects = objectsOf('shared-cache');
    const pod = find(objects, 'Deployment').spec.template.spec;
    expect(pod.volumes).toContainEqual({
      name: 'shared-cache',
      secret: { secretName: 'idmount-redis', defaultMode: 0o440 },
    });
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: 'shared-cache',
      mountPath: '/etc/idmount/shared-cache',
      readOnly: true,
    });
    expect(YAML.parse(find(objects, 'ConfigMap').data['config.yaml']).cache.shared).toEqual({
      url: 'rediss://redis-master.redis.svc:6380/0',
      keyPrefix: 'idmount:',
      passwordFile: '/etc/idmount/shared-cache/password',
      tls: { caFile: '/etc/idmount/shared-cache/ca.pem' },
    });
  });

  it('without a Secret, connects without AUTH; the port defaults to 6379; the key prefix follows the release', async () => {
    const objects = await renderChart(
      [ciFile('default')],
      { 'sharedCache.url': 'redis://redis.cache.svc' },
      'hub2',
    );
    expect(YAML.parse(find(objects, 'ConfigMap').data['config.yaml']).cache.shared).toEqual({
      url: 'redis://redis.cache.svc',
      keyPrefix: 'hub2-idmount:',
    });
    expect(find(objects, 'NetworkPolicy').spec.egress).toContainEqual({
      ports: [{ port: 6379, protocol: 'TCP' }],
    });
    expect(
      find(objects, 'Deployment').spec.template.spec.volumes.map((v: { name: string }) => v.name),
    ).not.toContain('shared-cache');
  });

  it('rolls the pods when the shared tier Secret changes (its name; its content through lookup on upgrade)', async () => {
    const annotations = async (secret: string) =>
      find(
        await renderChart([ciFile('shared-cache')], { 'sharedCache.existingSecret': secret }),
        'Deployment',
      ).spec.template.metadata.annotations as Record<string, string>;
    const [one, two] = [await annotations('redis-a'), await annotations('redis-b')];
    expect(one['checksum/shared-cache-secret']).toMatch(/^[0-9a-f]{64}$/);
    expect(one['checksum/shared-cache-secret']).not.toBe(two['checksum/shared-cache-secret']);
    expect(one['checksum/secret']).toBe(two['checksum/secret']);
  });

  const refusals = [
    {
      why: 'the tier set both in sharedCache and in config.cache.shared',
      setJson: { 'config.cache': { shared: { url: 'redis://other:6379' } } },
      message: /sharedCache\.url: the config has cache\.shared too/,
    },
    {
      why: 'a CA for a plain redis:// url',
      setJson: { 'sharedCache.url': 'redis://redis.redis.svc:6379' },
      message: /sharedCache\.caKey: a CA is only used with TLS/,
    },
    {
      why: 'a url with a password in it (the schema refuses it: use existingSecret)',
      setJson: { 'sharedCache.url': 'redis://:hunter2@redis.redis.svc:6379' },
      message: /sharedCache\.url|\/sharedCache\/url/,
    },
  ];
  it.each(refusals)('fails with the key to fix: $why', async ({ setJson, message }) => {
    const result = await renderChartRaw([ciFile('shared-cache')], setJson);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});

describe('replicas, autoscaling and the disruption budget', () => {
  it('with the HPA on, the Deployment leaves replicas to it and the PDB keeps two', () => {
    const objects = objectsOf('ha');
    expect(find(objects, 'Deployment').spec).not.toHaveProperty('replicas');
    expect(find(objects, 'HorizontalPodAutoscaler').spec).toMatchObject({
      minReplicas: 3,
      maxReplicas: 10,
      scaleTargetRef: { kind: 'Deployment', name: 'idmount' },
    });
    expect(find(objects, 'PodDisruptionBudget').spec.minAvailable).toBe(2);
  });

  it('with one replica there is no PDB (minAvailable 1 would block every node drain)', async () => {
    const objects = await renderChart([ciFile('default')], { replicas: 1 });
    expect(objects.map((o) => o.kind)).not.toContain('PodDisruptionBudget');
    expect(find(objects, 'Deployment').spec.replicas).toBe(1);
  });

  it('the ServiceMonitor scrapes /metrics on the named port, with the labels Prometheus selects', () => {
    const monitor = find(objectsOf('ha'), 'ServiceMonitor');
    expect(monitor.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
    expect(monitor.spec.selector.matchLabels).toEqual(SELECTOR);
    expect(monitor.spec.endpoints).toEqual([
      { port: 'http', path: '/metrics', interval: '30s', scrapeTimeout: '10s' },
    ]);
  });
});

describe('secrets are mounted as files for the ...File keys', () => {
  const cases = [
    { name: 'default', secretName: 'idmount', why: 'the chart-made Secret' },
    { name: 'ldap', secretName: 'idmount-secrets', why: 'existingSecret' },
  ];
  it.each(cases)(
    'ci/$name-values.yaml mounts $why read-only where the config points',
    ({ name, secretName }) => {
      const objects = objectsOf(name);
      const pod = find(objects, 'Deployment').spec.template.spec;
      expect(pod.volumes).toContainEqual({ name: 'secrets', secret: { secretName, defaultMode: 0o440 } });
      expect(pod.containers[0].volumeMounts).toContainEqual({
        name: 'secrets',
        mountPath: '/etc/idmount/secrets',
        readOnly: true,
      });
      const config = find(objects, 'ConfigMap').data['config.yaml'] as string;
      expect(config).toContain('sha256File: /etc/idmount/secrets/hub-token.sha256');
    },
  );

  it('no secret is written into the ConfigMap', () => {
    const configMap = JSON.stringify(find(objectsOf('keycloak'), 'ConfigMap'));
    expect(configMap).not.toContain('ci-only-client-secret');
  });
});

describe('bad values fail with the key to fix', () => {
  const cases = [
    {
      why: 'no config at all',
      files: [],
      setJson: { 'networkPolicy.jupyterhub.releaseName': 'jupyterhub' },
      message: /config: required/,
    },
    {
      why: 'the NetworkPolicy without the z2jh release to admit',
      files: [ciFile('default')],
      setJson: { 'networkPolicy.jupyterhub.releaseName': null },
      message: /networkPolicy\.jupyterhub\.releaseName: required/,
    },
    {
      why: 'autoscaling without cpu requests',
      files: [ciFile('default')],
      setJson: { 'autoscaling.enabled': true },
      message: /autoscaling\.enabled: set resources\.requests\.cpu/,
    },
    {
      why: 'a misspelt key (values.schema.json forbids unknown keys)',
      files: [ciFile('default')],
      setJson: { replica: 3 },
      message: /additional properties 'replica' not allowed/,
    },
    {
      why: 'an unknown label scheme',
      files: [ciFile('default')],
      setJson: { 'networkPolicy.jupyterhub.labelScheme': 'app' },
      message: /labelScheme/,
    },
    {
      why: 'a directory URL whose port cannot be told',
      files: [ciFile('default')],
      setJson: { 'config.sources': [{ name: 'x', type: 'ldap', urls: ['gopher://x.example.org'] }] },
      message: /cannot tell the port of "gopher:\/\/x\.example\.org"/,
    },
    {
      why: 'both PDB bounds',
      files: [ciFile('default')],
      setJson: { 'podDisruptionBudget.maxUnavailable': 1 },
      message: /set only one of minAvailable and maxUnavailable/,
    },
  ];
  it.each(cases)('$why', async ({ files, setJson, message }) => {
    const result = await renderChartRaw(files, setJson);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});

describe('NOTES.txt', () => {
  it.each(CI_VALUES)(
    'ci/$name-values.yaml: the port-forward names the real Service and port',
    async ({ name, file }) => {
      const notes = await renderNotes([file], 'idmount', 'identity');
      const service = find(objectsOf(name), 'Service');
      expect(notes).toContain(
        `kubectl --namespace identity port-forward service/${service.metadata.name} 8080:${service.spec.ports[0].port}`,
      );
      expect(notes).toContain('curl -s http://127.0.0.1:8080/readyz');
      expect(notes).toMatch(
        /curl -s -H "Authorization: Bearer \$IDMOUNT_TOKEN" http:\/\/127\.0\.0\.1:8080\/users\/.+\/spawn-plan/,
      );
    },
  );

  it('says what a second replica does not share without sharedCache, and what it shares with it', async () => {
    const alone = await renderNotes([ciFile('default')], 'idmount', 'identity');
    expect(alone).toMatch(/Each of the 2 replicas caches alone/);
    expect(alone).toMatch(/evicts only on the replica the\s+Service picked/);
    const shared = await renderNotes([ciFile('shared-cache')], 'idmount', 'identity');
    expect(shared).toMatch(/The replicas share a cache tier on rediss:\/\/redis-master\.redis\.svc:6380\/0/);
    expect(shared).not.toMatch(/caches alone/);
  });

  it('the render-extra-config step it prints is accepted by the CLI and targets the Service', async () => {
    const notes = await renderNotes([ciFile('keycloak')], 'idmount', 'identity');
    const command = /node dist\/cli\/main\.js (render-extra-config[^>]*)>/.exec(
      notes.replace(/\\\n\s*/g, ''),
    )?.[1];
    expect(command).toBeDefined();
    const args = (command as string).trim().split(/\s+/);
    expect(args).toEqual(
      expect.arrayContaining([
        '--url',
        'http://idmount.identity.svc:8080',
        '--release',
        'idmount',
        '--namespace',
        'identity',
      ]),
    );
    const fragment = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: join(CHART_DIR, '../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
    expect(YAML.parse(fragment).hub.extraConfig).toHaveProperty('idmount');
  });
});
