#!/usr/bin/env node
// The `idmount` command: serve, lookup, check-config, hash-token (and render-extra-config).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { type PodSecurityLevel, podSecurityLevel } from '../mounts/config.js';
import { type LoadedConfig, loadConfig } from '../settings.js';
import { lookup } from './lookup.js';

const USAGE = `Usage: idmount <command> [options]

Commands:
  serve [--config FILE] [--port N]         Run the service (no config: the embedded demo default).
  lookup NAME [--config FILE] [--explain] [--json]
                                           Resolve a user in-process, as the spawn plan would.
  check-config FILE                        Validate a config file; every problem with its key.
  hash-token [--generate]                  Print the SHA-256 digest of a token read from stdin
                                           (or generate a new random token and print both).
  render-extra-config --url URL [...]      Print the z2jh values fragment that wires the hub to idmount.

The config file can also be given with IDMOUNT_CONFIG.
`;

type Handler = (args: string[]) => Promise<number>;

function configPath(flag: string | undefined): string | undefined {
  return flag ?? (process.env.IDMOUNT_CONFIG || undefined);
}

function load(path: string | undefined): LoadedConfig {
  return loadConfig(path);
}

const commands: Record<string, Handler> = {
  async serve(args) {
    const { values } = parseArgs({ args, options: { config: { type: 'string' }, port: { type: 'string' } } });
    const port = values.port === undefined ? undefined : Number(values.port);
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      throw new UsageError('--port takes a number from 0 to 65535');
    }
    const { startServer } = await import('../server.js');
    await startServer(load(configPath(values.config)), { port });
    return -1; // keep running
  },

  async lookup(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { config: { type: 'string' }, explain: { type: 'boolean' }, json: { type: 'boolean' } },
    });
    if (positionals.length !== 1) throw new UsageError('lookup takes exactly one NAME');
    const loaded = load(configPath(values.config));
    const { output, exitCode } = await lookup(loaded, positionals[0] as string, {
      explain: values.explain ?? false,
      json: values.json ?? false,
    });
    process.stdout.write(output);
    return exitCode;
  },

  async 'check-config'(args) {
    const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
    if (positionals.length !== 1) throw new UsageError('check-config takes exactly one FILE');
    const loaded = load(positionals[0]);
    const { config } = loaded;
    process.stdout.write(
      `ok: ${loaded.origin} — sources ${config.sources.map((s) => `${s.name} (${s.type})`).join(', ')}; ` +
        `${config.data.length} data rule(s); home ${config.home ? `from ${config.home.from}` : 'not mounted'}\n`,
    );
    // What the namespace of the notebooks must admit: the least permissive Pod Security level of
    // all, and which volume kind asks for more than "restricted".
    const rules = [...(config.home ? [{ name: 'home', volume: config.home.volume }] : []), ...config.data];
    const RANK = { restricted: 0, baseline: 1, privileged: 2 } as const;
    let needed: PodSecurityLevel = 'restricted';
    for (const rule of rules) {
      const level = podSecurityLevel(rule.volume);
      process.stdout.write(
        `  ${rule.name}: ${Object.keys(rule.volume)[0]} volume, Pod Security "${level}"\n`,
      );
      if (RANK[level] > RANK[needed]) needed = level;
    }
    process.stdout.write(
      `notebook pods need a namespace that admits Pod Security "${needed}"` +
        (needed === 'restricted' ? '\n' : ' (csi or pvc volumes are admitted under "restricted")\n'),
    );
    return 0;
  },

  async 'render-extra-config'(args) {
    const { renderExtraConfigCommand, RenderUsageError, RENDER_USAGE } = await import('../spawner/render.js');
    try {
      process.stdout.write(renderExtraConfigCommand(args));
    } catch (err) {
      if (!(err instanceof RenderUsageError)) throw err;
      process.stderr.write(`idmount render-extra-config: ${err.message}\n\n${RENDER_USAGE}\n`);
      return 2;
    }
    return 0;
  },

  async 'hash-token'(args) {
    const { values } = parseArgs({ args, options: { generate: { type: 'boolean' } } });
    const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');
    if (values.generate) {
      // 32 random bytes, URL-safe: as strong as any bearer token needs to be.
      const token = randomBytes(32).toString('base64url');
      process.stdout.write(`token:  ${token}\nsha256: ${digest(token)}\n`);
      return 0;
    }
    const token = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    if (token === '') throw new UsageError('hash-token reads the token from standard input; it was empty');
    process.stdout.write(`${digest(token)}\n`);
    return 0;
  },
};

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const handler = commands[command];
  if (handler === undefined) throw new UsageError(`unknown command '${command}'`);
  return handler(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`idmount: ${err.message}\n`);
      process.exitCode = 1;
    } else if (
      err instanceof UsageError ||
      (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      process.stderr.write(`idmount: ${(err as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (
      ['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'].includes((err as NodeJS.ErrnoException).code ?? '')
    ) {
      process.stderr.write(`idmount: cannot listen: ${(err as Error).message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`idmount: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
