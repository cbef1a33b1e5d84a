// Small zod building blocks shared by every config section: durations, secrets, names, paths.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `250ms`, `30s`, `5m`, `24h`, `7d`, or a number of milliseconds. Parsed to milliseconds. */
export const Duration = z
  .union([
    z.number().int().nonnegative(),
    z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration such as 250ms, 30s, 5m, 24h or 7d'),
  ])
  .transform((value) => {
    if (typeof value === 'number') return value;
    const [, amount, unit] = /^(\d+)(ms|s|m|h|d)$/.exec(value) as unknown as [
      string,
      string,
      keyof typeof UNIT_MS,
    ];
    return Number(amount) * UNIT_MS[unit];
  });

/** A name used in logs, metrics, explain traces and Kubernetes volume names. */
export const ResourceName = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$/,
    'use 1-30 lowercase letters, digits or dashes (a DNS label)',
  );

export const AbsolutePath = z
  .string()
  .refine((p) => p.startsWith('/') && !p.split('/').includes('..') && !/[\0\n\r]/.test(p), {
    message: 'expected an absolute path without ".." segments',
  });

export const RegexString = z.string().superRefine((source, ctx) => {
  try {
    new RegExp(source, 'u');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}` });
  }
});

/**
 * Reads a secret named by `<key>File` (a mounted Kubernetes Secret) or `<key>Env` (an environment
 * variable) at config load time. Secrets never appear inline in the YAML and never have defaults.
 * Returns undefined (and records an issue on the right key) when the secret cannot be read.
 */
export function readSecret(
  ref: { file?: string | undefined; env?: string | undefined },
  key: string,
  ctx: z.RefinementCtx,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (ref.file !== undefined && ref.env !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: [`${key}File`],
      message: `set only one of ${key}File and ${key}Env`,
    });
    return undefined;
  }
  if (ref.file !== undefined) {
    try {
      const value = readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
      if (value.length === 0) throw new Error('the file is empty');
      return value;
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: [`${key}File`],
        message: `cannot read secret file ${ref.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      });
      return undefined;
    }
  }
  if (ref.env !== undefined) {
    const value = env[ref.env];
    if (value === undefined || value === '') {
      ctx.addIssue({
        code: 'custom',
        path: [`${key}Env`],
        message: `environment variable ${ref.env} is not set`,
      });
      return undefined;
    }
    return value;
  }
  return undefined;
}

/** Every source's `name`. */
export const SourceName = ResourceName.describe('Source name, used in explain traces, metrics and merge.');
