// The chart tests' tools: helm and kubernetes-validate from $IDMOUNT_CACHE (installed by
// scripts/test-deps/50-helm.sh), a `helm template` wrapper that returns parsed objects, and offline
// validation of those objects against the Kubernetes API schemas of a current release.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import YAML from 'yaml';

const run = promisify(execFile);

/** Kubernetes release whose API schemas the rendered objects must satisfy (kubernetes-validate 1.37.0 carries it). */
export const KUBERNETES_VERSION = '1.37';

export const CHART_DIR = resolve(import.meta.dirname, '../../helm-chart/idmount');
export const CI_VALUES = ['default', 'ldap', 'keycloak', 'ha', 'shared-cache'].map((name) => ({
  name,
  file: join(CHART_DIR, 'ci', `${name}-values.yaml`),
}));

const cacheDir = process.env.IDMOUNT_CACHE ?? join(homedir(), '.cache', 'idmount');
const HELM = join(cacheDir, 'bin', 'helm');
const KUBERNETES_VALIDATE = join(cacheDir, 'venvs', 'kubernetes-validate', 'bin', 'kubernetes-validate');

function tool(path: string, what: string): string {
  if (!existsSync(path)) {
    throw new Error(
      `${what} is not installed (expected at ${path}). Install the test dependencies: npm run test:deps`,
    );
  }
  return path;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked against schemas, not types.
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  data?: any;
  [key: string]: unknown;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function helm(args: string[]): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await run(tool(HELM, 'helm'), args, { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `helm template` with values files and --set-json pairs; throws with helm's message on failure. */
export async function renderChart(
  valuesFiles: string[],
  setJson: Record<string, unknown> = {},
  release = 'idmount',
  namespace = 'jhub',
): Promise<K8sObject[]> {
  const result = await renderChartRaw(valuesFiles, setJson, release, namespace);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  return YAML.parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((obj): obj is K8sObject => obj !== null);
}

export async function renderChartRaw(
  valuesFiles: string[],
  setJson: Record<string, unknown> = {},
  release = 'idmount',
  namespace = 'jhub',
): Promise<HelmResult> {
  const args = ['template', release, CHART_DIR, '--namespace', namespace];
  for (const file of valuesFiles) args.push('--values', file);
  for (const [key, value] of Object.entries(setJson))
    args.push('--set-json', `${key}=${JSON.stringify(value)}`);
  return helm(args);
}

/**
 * NOTES.txt as `helm install` would print it. `helm template` leaves NOTES out, so a copy of the
 * chart carries the same text inside a ConfigMap, rendered with the same values.
 */
export async function renderNotes(
  valuesFiles: string[],
  release = 'idmount',
  namespace = 'jhub',
): Promise<string> {
  const copy = mkdtempSync(join(tmpdir(), 'idmount-notes-'));
  try {
    cpSync(CHART_DIR, copy, { recursive: true });
    const notes = readFileSync(join(copy, 'templates', 'NOTES.txt'), 'utf8');
    rmSync(join(copy, 'templates', 'NOTES.txt'));
    writeFileSync(
      join(copy, 'templates', 'notes-under-test.yaml'),
      `{{- define "notes.under.test" }}${notes}{{- end }}\n` +
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\ndata:\n' +
        '  NOTES.txt: {{ include "notes.under.test" . | quote }}\n',
    );
    const args = [
      'template',
      release,
      copy,
      '--namespace',
      namespace,
      '--show-only',
      'templates/notes-under-test.yaml',
    ];
    for (const file of valuesFiles) args.push('--values', file);
    const result = await helm(args);
    if (result.code !== 0) throw new Error(`rendering NOTES.txt failed:\n${result.stderr}`);
    return (YAML.parse(result.stdout) as { data: { 'NOTES.txt': string } }).data['NOTES.txt'];
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

export function find(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
  return found[0] as K8sObject;
}

export interface ValidationReport {
  /** `kind/name` of every object that passed its schema. */
  passed: string[];
  /** One line per object that failed (or had no schema), with the reason. */
  problems: string[];
}

/**
 * Validates objects offline: built-in kinds with kubernetes-validate --strict (unknown fields are
 * errors) against the Kubernetes API schemas; the ServiceMonitor with the prometheus-operator
 * models' validator (type and required checks; it does not reject unknown fields).
 */
export async function validateObjects(objects: K8sObject[]): Promise<ValidationReport> {
  const report: ValidationReport = { passed: [], problems: [] };
  const builtIn = objects.filter((o) => o.kind !== 'ServiceMonitor');
  for (const monitor of objects.filter((o) => o.kind === 'ServiceMonitor')) {
    const name = `servicemonitor/${monitor.metadata.name}`;
    try {
      new ServiceMonitor(monitor as never).validate();
      report.passed.push(name);
    } catch (err) {
      report.problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  if (builtIn.length === 0) return report;
  const dir = mkdtempSync(join(tmpdir(), 'idmount-k8s-validate-'));
  try {
    const files = builtIn.map((object, i) => {
      const file = join(dir, `${i}-${object.kind.toLowerCase()}.yaml`);
      writeFileSync(file, YAML.stringify(object));
      return file;
    });
    const validator = tool(KUBERNETES_VALIDATE, 'kubernetes-validate');
    let output: string;
    try {
      output = (await run(validator, ['--strict', '-k', KUBERNETES_VERSION, ...files])).stdout;
    } catch (err) {
      output = (err as { stdout?: string }).stdout ?? String(err);
    }
    for (const line of output.split('\n').filter(Boolean)) {
      const passed = /^INFO .* passed for resource (\S+) against version/.exec(line);
      if (passed) report.passed.push(passed[1] as string);
      else report.problems.push(line.replace(`${dir}/`, ''));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return report;
}
