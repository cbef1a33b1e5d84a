// How a cache entry travels through the shared tier, and the schema every entry read back must
// pass: Redis is another process's memory, so what comes out of it is checked like input from the
// network (a strict schema of the packed identity, bounded sizes, ids in the POSIX range) before
// the resolver even derives a plan from it. The plan's own checks (policy, path confinement, the
// response schema) run after this, on every entry, exactly as after a directory lookup.
import { z } from 'zod';
import { internAttempts, internOrigin } from './packing.js';
import type { StoredEntry } from './store.js';

/** The wire format's version: an entry of another version is not read (a rollout may mix them). */
const VERSION = 1;

const PosixId = z.number().int().min(0).max(4_294_967_295);
const Text = z.string().max(4096);
const Name = z.string().min(1).max(256);
const SourceLabel = z.string().min(1).max(64);

/** The packed identity (./packing.ts): `[name, uid, gid, home, gecos, shell, [group, gid, ...], primaryGroupName, notes]`. */
const PackedIdentity = z.tuple([
  Name,
  PosixId,
  PosixId,
  Text.nullable(),
  Text.nullable(),
  Text.nullable(),
  z
    .array(z.union([Name, PosixId]))
    .max(40_000)
    .refine(
      (flat) =>
        flat.length % 2 === 0 &&
        flat.every((v, i) => (i % 2 === 0 ? typeof v === 'string' : typeof v === 'number')),
      'groups must alternate name, gid',
    ),
  Name.nullable(),
  z.array(Text).max(1000),
]);

const Attempts = z.array(z.strictObject({ source: SourceLabel, result: SourceLabel })).max(32);
const FetchedAt = z.number().int().positive();

const WireEntry = z.discriminatedUnion('kind', [
  z.strictObject({
    v: z.literal(VERSION),
    kind: z.literal('found'),
    fetchedAt: FetchedAt,
    attempts: Attempts,
    origin: z.strictObject({
      uid: SourceLabel.optional(),
      gid: SourceLabel.optional(),
      home: SourceLabel.optional(),
      gecos: SourceLabel.optional(),
      groups: SourceLabel.optional(),
    }),
    identity: PackedIdentity,
  }),
  z.strictObject({
    v: z.literal(VERSION),
    kind: z.literal('missing'),
    fetchedAt: FetchedAt,
    attempts: Attempts,
  }),
]);

/** Entries above this size are refused unread (a user with 20 000 groups stays well below it). */
export const MAX_ENTRY_BYTES = 1_048_576;

/** The entry as the shared tier stores it; the packed identity is embedded as JSON, not re-escaped. */
export function encodeEntry(entry: StoredEntry): string {
  const head = `{"v":${VERSION},"kind":"${entry.kind}","fetchedAt":${entry.fetchedAt},"attempts":${JSON.stringify(entry.attempts)}`;
  if (entry.kind === 'missing') return `${head}}`;
  return `${head},"origin":${JSON.stringify(entry.origin)},"identity":${entry.identity}}`;
}

export type Decoded = { ok: true; entry: StoredEntry } | { ok: false; reason: string };

/** An entry read back, checked; the reason says what was wrong (for the log, never for a client). */
export function decodeEntry(text: string): Decoded {
  if (text.length > MAX_ENTRY_BYTES) return { ok: false, reason: `entry of ${text.length} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const parsed = WireEntry.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `${issue?.path.join('.') || 'entry'}: ${issue?.message ?? 'invalid'}` };
  }
  const wire = parsed.data;
  const attempts = internAttempts(wire.attempts);
  if (wire.kind === 'missing')
    return { ok: true, entry: { kind: 'missing', attempts, fetchedAt: wire.fetchedAt } };
  const { uid, gid, home, gecos, groups } = wire.origin;
  return {
    ok: true,
    entry: {
      kind: 'found',
      // Re-serialised from the checked value, so nothing but the schema's fields is ever kept.
      identity: JSON.stringify(wire.identity),
      origin: internOrigin({ uid, gid, home, gecos, groups }),
      attempts,
      fetchedAt: wire.fetchedAt,
    },
  };
}
