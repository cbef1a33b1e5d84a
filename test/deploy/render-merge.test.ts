// The documented way of wiring the hub keeps a site's own list values: Helm replaces lists when it
// merges values files, so `render-extra-config --values config.yaml` prints a fragment whose lists
// already hold the site's entries. Checked with the real helm merging the two files exactly as
// `helm upgrade -f config.yaml -f idmount.yaml` does (a probe chart prints the merged values).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ROOT } from '../helpers/serve.js';
import { helm } from './tools.js';

const SITE = {
  hub: {
    networkPolicy: {
      egress: [
        { to: [{ ipBlock: { cidr: '198.51.100.0/24' } }], ports: [{ port: 636, protocol: 'TCP' }] },
        { to: [{ podSelector: { matchLabels: { app: 'postgres' } } }], ports: [{ port: 5432 }] },
      ],
    },
    extraEnv: [{ name: 'SITE_SETTING', value: 'kept' }],
    extraConfig: { site: 'c.JupyterHub.admin_access = True' },
  },
  singleuser: { extraEnv: { TZ: 'Europe/Paris' } },
};

/** A chart that renders nothing but the values helm merged for it. */
function probeChart(): string {
  const chart = mkdtempSync(join(tmpdir(), 'idmount-merge-chart-'));
  writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: probe\nversion: 0.1.0\n');
  mkdirSync(join(chart, 'templates'));
  writeFileSync(
    join(chart, 'templates', 'values.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: probe }\ndata:\n  values.json: {{ toJson .Values | quote }}\n',
  );
  return chart;
}

async function helmMerge(files: string[]) {
  const chart = probeChart();
  const res = await helm(['template', 'probe', chart, ...files.flatMap((f) => ['-f', f])]);
  const doc = YAML.parse(res.stdout) as { data: { 'values.json': string } };
  return JSON.parse(doc.data['values.json']);
}

function render(args: string[]): string {
  return execFileSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'render-extra-config', ...args],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
}

describe('render-extra-config --values', () => {
  const dir = mkdtempSync(join(tmpdir(), 'idmount-merge-'));
  const site = join(dir, 'config.yaml');
  writeFileSync(site, YAML.stringify(SITE));

  it("keeps the site's egress rules and list-form extraEnv through helm's merge, with idmount's added", async () => {
    const fragment = join(dir, 'idmount.yaml');
    writeFileSync(
      fragment,
      render(['--url', 'http://idmount.identity.svc:8080', '--namespace', 'identity', '--values', site]),
    );
    const values = await helmMerge([site, fragment]);
    expect(values.hub.networkPolicy.egress).toHaveLength(3);
    expect(values.hub.networkPolicy.egress.slice(0, 2)).toEqual(SITE.hub.networkPolicy.egress);
    expect(JSON.stringify(values.hub.networkPolicy.egress[2])).toContain(
      '"app.kubernetes.io/name":"idmount"',
    );
    expect(values.hub.extraEnv).toEqual([
      { name: 'SITE_SETTING', value: 'kept' },
      { name: 'IDMOUNT_TOKEN', valueFrom: { secretKeyRef: { name: 'idmount-hub-token', key: 'token' } } },
    ]);
    expect(Object.keys(values.hub.extraConfig).sort()).toEqual(['idmount', 'site']);
    expect(values.singleuser).toMatchObject({ fsGid: null, extraEnv: { TZ: 'Europe/Paris' } });
  });

  it('renders the same fragment again over values that already hold it (no duplicate rule)', async () => {
    const first = join(dir, 'once.yaml');
    writeFileSync(first, render(['--url', 'http://idmount.identity.svc:8080', '--values', site]));
    const merged = join(dir, 'merged.yaml');
    writeFileSync(merged, YAML.stringify(await helmMerge([site, first])));
    const again = YAML.parse(render(['--url', 'http://idmount.identity.svc:8080', '--values', merged]));
    expect(again.hub.networkPolicy.egress).toHaveLength(3);
  });

  it('without --values, helm would drop the site’s own rules (why the flag exists)', async () => {
    const fragment = join(dir, 'plain.yaml');
    writeFileSync(fragment, render(['--url', 'http://idmount.identity.svc:8080']));
    const values = await helmMerge([site, fragment]);
    expect(values.hub.networkPolicy.egress).toHaveLength(1);
  });

  it('refuses a values file whose egress is not a list, naming the key', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'hub: { networkPolicy: { egress: { to: [] } } }\n');
    expect(() => render(['--url', 'http://idmount:8080', '--values', bad])).toThrow(
      /hub.networkPolicy.egress/,
    );
  });
});
