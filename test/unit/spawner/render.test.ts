// `idmount render-extra-config`: the values fragment, the constants block of the Python template,
// and the usage errors. What the rendered Python does in a hub is proven in test/hub (pytest).
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  parseRenderArgs,
  RenderUsageError,
  renderExtraConfig,
  renderSpawnerPython,
  spawnerTemplate,
} from '../../../src/spawner/render.js';

const render = (...args: string[]) => YAML.parse(renderExtraConfig(parseRenderArgs(args)));

describe('render-extra-config', () => {
  it('prints the z2jh fragment: the spawner, the token from a Secret, egress to idmount, fsGid off', () => {
    const values = render(
      '--url',
      'http://idmount.jhub.svc:8080',
      '--release',
      'idm',
      '--namespace',
      'identity',
    );
    expect(values.hub.extraConfig.idmount).toContain('IDMOUNT_URL = "http://idmount.jhub.svc:8080"');
    expect(values.hub.extraConfig.idmount).toContain('c"].JupyterHub.spawner_class = IdmountSpawner');
    expect(values.hub.extraEnv).toEqual({
      IDMOUNT_TOKEN: { valueFrom: { secretKeyRef: { name: 'idmount-hub-token', key: 'token' } } },
    });
    expect(values.hub.networkPolicy.egress).toEqual([
      {
        to: [
          {
            podSelector: {
              matchLabels: { 'app.kubernetes.io/name': 'idmount', 'app.kubernetes.io/instance': 'idm' },
            },
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'identity' } },
          },
        ],
        ports: [{ port: 8080, protocol: 'TCP' }],
      },
    ]);
    expect(values.singleuser).toEqual({ fsGid: null });
  });

  it.each([
    [
      'the defaults',
      [],
      [
        'IDMOUNT_TOKEN_ENV = "IDMOUNT_TOKEN"',
        'IDMOUNT_NSS_INIT_CONTAINER = True',
        'IDMOUNT_NSS_IMAGE = None',
      ],
    ],
    [
      'the NSS init container turned off',
      ['--no-nss-init-container'],
      ['IDMOUNT_NSS_INIT_CONTAINER = False'],
    ],
    [
      'an init container image of its own',
      ['--nss-image', 'busybox:1.37'],
      ['IDMOUNT_NSS_IMAGE = "busybox:1.37"'],
    ],
    [
      'timeouts and attempts',
      ['--connect-timeout', '2', '--request-timeout', '7.5', '--attempts', '4'],
      ['IDMOUNT_CONNECT_TIMEOUT = 2', 'IDMOUNT_REQUEST_TIMEOUT = 7.5', 'IDMOUNT_ATTEMPTS = 4'],
    ],
  ])('renders the constants block for %s', (_case, args, lines) => {
    const python = render('--url', 'https://idmount.example.org', ...args).hub.extraConfig.idmount as string;
    for (const line of lines) expect(python.split('\n')).toContain(line);
  });

  it('leaves the template untouched outside the constants block', () => {
    const template = spawnerTemplate();
    const python = renderSpawnerPython(parseRenderArgs(['--url', 'http://x:1']), template);
    const outside = (text: string) => text.replace(/# --- rendered[\s\S]*# --- end rendered ---/, '');
    expect(outside(python)).toBe(outside(template));
  });

  it('writes a string constant as a Python literal, quotes and backslashes escaped', () => {
    const options = { ...parseRenderArgs(['--url', 'http://x:1']), nssImage: 'a"b\\c' };
    expect(renderSpawnerPython(options)).toContain('IDMOUNT_NSS_IMAGE = "a\\"b\\\\c"');
  });

  it.each([
    ['a template without the constants block', 'print(1)\n', /no rendered-constants block/],
    [
      'a block with a line it does not know',
      '# --- rendered by idmount render-extra-config ---\nimport os\n# --- end rendered ---\n',
      /unexpected line 2/,
    ],
    [
      'a block missing a constant',
      '# --- rendered by idmount render-extra-config ---\nIDMOUNT_URL = ""\n# --- end rendered ---\n',
      /does not define IDMOUNT_TOKEN_ENV/,
    ],
  ])('refuses %s', (_case, template, message) => {
    expect(() => renderSpawnerPython(parseRenderArgs(['--url', 'http://x:1']), template)).toThrow(message);
  });

  it.each([
    ['no --url', [], /--url is required/],
    ['a URL that is not one', ['--url', 'idmount:8080x'], /--url must be http or https|not a URL/],
    ['a non-HTTP scheme', ['--url', 'ftp://idmount'], /--url must be http or https, got 'ftp'/],
    ['credentials in the URL', ['--url', 'http://hub:secret@idmount'], /must not carry credentials/],
    ['an unknown option', ['--url', 'http://x', '--colour'], /Unknown option '--colour'/],
    ['a stray argument', ['--url', 'http://x', 'extra'], /Unexpected argument 'extra'/],
    [
      'a Secret name that is not a Kubernetes name',
      ['--url', 'http://x', '--token-secret', 'My_Secret'],
      /--token-secret must be a Kubernetes Secret name/,
    ],
    [
      'an environment name with a dash',
      ['--url', 'http://x', '--token-env', 'IDMOUNT-TOKEN'],
      /--token-env must be an environment variable name/,
    ],
    [
      'a zero timeout',
      ['--url', 'http://x', '--request-timeout', '0'],
      /--request-timeout must be a number of seconds above 0/,
    ],
    [
      'a connect timeout above the request timeout',
      ['--url', 'http://x', '--connect-timeout', '20'],
      /must not exceed --request-timeout/,
    ],
    [
      'retries that outlast start_timeout',
      ['--url', 'http://x', '--attempts', '5', '--request-timeout', '30'],
      /within 45 seconds/,
    ],
    [
      'a port out of range',
      ['--url', 'http://x', '--pod-port', '70000'],
      /--pod-port must be a whole number from 1 to 65535/,
    ],
  ])('refuses %s with a usage error', (_case, args, message) => {
    expect(() => parseRenderArgs(args)).toThrow(RenderUsageError);
    expect(() => parseRenderArgs(args)).toThrow(message);
  });

  it.each([
    ['the URL port', 'http://idmount:9090', [], 9090],
    ['8080 when the URL has no port', 'https://idmount.example.org', [], 8080],
    ['--pod-port when the Service maps ports', 'http://idmount', ['--pod-port', '8443'], 8443],
  ])('opens egress on %s', (_case, url, args, port) => {
    expect(render('--url', url, ...args).hub.networkPolicy.egress[0].ports).toEqual([
      { port, protocol: 'TCP' },
    ]);
  });

  it('is the `idmount render-extra-config` command: YAML on stdout, or exit 2 with the reason and usage', () => {
    const root = resolve(import.meta.dirname, '../../..');
    const cli = (...args: string[]) =>
      spawnSync(resolve(root, 'node_modules/.bin/tsx'), ['src/cli/main.ts', 'render-extra-config', ...args], {
        cwd: root,
        encoding: 'utf8',
      });
    const ok = cli('--url', 'http://idmount:8080');
    expect(ok.status).toBe(0);
    expect(YAML.parse(ok.stdout).singleuser).toEqual({ fsGid: null });
    const bad = cli('--url', 'ftp://idmount');
    expect(bad.status).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain("--url must be http or https, got 'ftp'");
    expect(bad.stderr).toContain('Usage: idmount render-extra-config --url URL');
  });
});
