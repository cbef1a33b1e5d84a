// The `file` source: a YAML/JSON directory document, or classic passwd + group files (getent
// format). Files are re-read when they change; a broken file on reload keeps the last good data.
import { readFileSync, type Stats, stat, statSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { directoryEntryInvalid } from '../../../errors.js';
import type {
  DirectoryGroup,
  DirectoryRecord,
  IdentitySource,
  SourceContext,
  SourceHealth,
} from '../../types.js';
import { invalidId, readPosixId } from '../../values.js';
import type { FileSourceConfig } from './config.js';

/** Entries as read: values stay untyped so one malformed user cannot break the others. */
interface RawUser {
  name: string;
  uid: unknown;
  gid: unknown;
  home?: unknown;
  gecos?: unknown;
  shell?: unknown;
}
interface RawGroup {
  name: string;
  gid: unknown;
  members: string[];
}
interface Snapshot {
  users: Map<string, RawUser[]>;
  /** Groups listing a user as member, and groups by gid text: lookups never scan every group. */
  memberOf: Map<string, RawGroup[]>;
  byGid: Map<string, RawGroup[]>;
}

const DocumentSchema = z.object({
  users: z.array(z.looseObject({ name: z.string().min(1) })).default([]),
  groups: z
    .array(z.looseObject({ name: z.string().min(1), members: z.array(z.string()).default([]) }))
    .default([]),
});

function parseDocument(text: string): Snapshot {
  // Every scalar as text (YAML's failsafe schema): an id is read from its spelling, so 0x4e21 or
  // 2.0001e4 are refused like in every other source instead of becoming 20001.
  const doc = DocumentSchema.parse(YAML.parse(text, { schema: 'failsafe' }) ?? {});
  return index(
    doc.users.map((u) => ({ ...u, uid: u.uid, gid: u.gid }) as RawUser),
    doc.groups.map((g) => ({ name: g.name, gid: g.gid, members: g.members })),
  );
}

function parseColonFile(text: string, fields: number, file: string): string[][] {
  const rows: string[][] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const parts = line.split(':');
    if (parts.length !== fields) throw new Error(`${file} line ${i + 1}: expected ${fields} fields`);
    rows.push(parts);
  });
  return rows;
}

function parsePasswdGroup(passwd: string, group: string): Snapshot {
  const users = parseColonFile(passwd, 7, 'passwd').map(
    ([name, , uid, gid, gecos, home, shell]) => ({ name, uid, gid, gecos, home, shell }) as RawUser,
  );
  const groups = parseColonFile(group, 4, 'group').map(([name, , gid, members]) => ({
    name: name as string,
    gid,
    members: (members ?? '').split(',').filter((m) => m !== ''),
  }));
  return index(users, groups);
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V) {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function index(users: RawUser[], groups: RawGroup[]): Snapshot {
  const snapshot: Snapshot = { users: new Map(), memberOf: new Map(), byGid: new Map() };
  for (const user of users) push(snapshot.users, user.name, user);
  for (const group of groups) {
    for (const member of new Set(group.members)) push(snapshot.memberOf, member, group);
    push(snapshot.byGid, String(group.gid), group);
  }
  return snapshot;
}

function parseId(value: unknown, attribute: string, source: string, user: string): number {
  const id = readPosixId(value);
  if (id === undefined) throw invalidId(source, user, attribute, value);
  return id;
}

const optionalString = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);

export function createFileSource(config: FileSourceConfig, ctx: SourceContext): IdentitySource {
  const files = (config.path !== undefined ? [config.path] : [config.passwd, config.group]).map((f) =>
    resolve(ctx.baseDir, f as string),
  );
  const log = ctx.log.child({ source: config.name });
  let health: SourceHealth = { up: true, since: new Date().toISOString() };

  // What each file looked like when it was last read. The poller compares against this, not
  // against its own first stat (taken asynchronously, possibly after a change it would then miss).
  // Stat before reading: a change in between costs one extra reload, never a missed one.
  const loadedVersion = new Map<string, string>();
  const version = (stats: Stats) => `${stats.ino}:${stats.size}:${stats.mtimeMs}`;

  const load = (): Snapshot => {
    for (const f of files) {
      let seen = 'unreadable';
      try {
        seen = version(statSync(f));
      } catch {
        // readFileSync below says why.
      }
      loadedVersion.set(f, seen);
    }
    const [first, second] = files.map((f) => readFileSync(f, 'utf8'));
    // An empty file is a half-written or truncated one far more often than a directory with no
    // users: taking it would answer 404 for everyone while looking healthy.
    if ((first as string).trim() === '') throw new Error(`${files[0]} is empty`);
    return config.path !== undefined
      ? parseDocument(first as string)
      : parsePasswdGroup(first as string, second as string);
  };

  // The first load must succeed: a service that starts with no directory would answer 404 for all.
  let snapshot = load();

  const reload = () => {
    try {
      snapshot = load();
      health = { up: true, since: new Date().toISOString() };
      log.info({ users: snapshot.users.size }, 'directory file reloaded');
    } catch (err) {
      health = {
        up: true,
        since: health.since,
        // The first line only: a parser's code frame would show the directory file's content.
        lastError: `reload failed, serving last good data: ${(err as Error).message.split('\n')[0]}`,
      };
      log.error({ err }, 'directory file reload failed; keeping the last good data');
    }
  };
  // Stat polling (survives ConfigMap symlink swaps, unlike inotify). A file that cannot be
  // stat'ed counts as changed, so the failed reload shows in /readyz.
  const poll = setInterval(() => {
    for (const file of files) {
      stat(file, (err, stats) => {
        if ((err === null ? version(stats) : 'unreadable') !== loadedVersion.get(file)) reload();
      });
    }
  }, config.reloadInterval);
  poll.unref();

  return {
    name: config.name,
    type: 'file',
    async lookup(username: string): Promise<DirectoryRecord | null> {
      const entries = snapshot.users.get(username);
      if (entries === undefined) return null;
      if (entries.length > 1) {
        throw directoryEntryInvalid(
          config.name,
          `The directory has ${entries.length} entries for '${username}'.`,
          {
            user: username,
          },
        );
      }
      const raw = entries[0] as RawUser;
      const uid = parseId(raw.uid, 'uid', config.name, username);
      const gid = parseId(raw.gid, 'gid', config.name, username);
      const groups: DirectoryGroup[] = [];
      const notes: string[] = [];
      let primaryGroupName: string | undefined;
      // The primary group first (user-private groups list no members), then memberships, in file order.
      const candidates = new Set([
        ...(snapshot.byGid.get(String(gid)) ?? []),
        ...(snapshot.memberOf.get(username) ?? []),
      ]);
      for (const group of candidates) {
        const groupGid = readPosixId(group.gid);
        if (groupGid === gid) primaryGroupName ??= group.name;
        if (groupGid === undefined) {
          notes.push(`group '${group.name}' skipped: its gid is not a number`);
          continue;
        }
        groups.push({ name: group.name, gid: groupGid });
      }
      return {
        name: raw.name,
        uid,
        gid,
        home: optionalString(raw.home),
        gecos: optionalString(raw.gecos),
        shell: optionalString(raw.shell),
        groups,
        primaryGroupName,
        notes,
      };
    },
    health: () => health,
    async close() {
      clearInterval(poll);
    },
  };
}
