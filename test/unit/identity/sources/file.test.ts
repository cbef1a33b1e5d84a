// The file source: YAML/JSON documents and passwd + group files, reload on change, last good
// data kept when a reload fails, malformed entries reported per user.
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { IdmountError } from '../../../../src/errors.js';
import { FileSourceConfigSchema } from '../../../../src/identity/sources/file/config.js';
import { createFileSource } from '../../../../src/identity/sources/file/source.js';
import { writeDirectory } from '../../../helpers/app.js';

const log = pino({ level: 'silent' });
const open = (fields: object) => {
  const config = FileSourceConfigSchema.parse({ name: 'f', type: 'file', reloadInterval: 20, ...fields });
  return createFileSource(config, { log, baseDir: '/' });
};
const until = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 800; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not reached in 20 s');
};

describe('file source', () => {
  it('reads a YAML document with user-private and supplementary groups', async () => {
    const path = writeDirectory({
      users: [{ name: 'alice', uid: 20001, gid: 20001, home: '/home/alice', gecos: 'Alice' }],
      groups: [
        { name: 'alice', gid: 20001 },
        { name: 'proposal-mx1234', gid: 30001, members: ['alice', 'bob'] },
        { name: 'other', gid: 30002, members: ['bob'] },
      ],
    });
    const source = open({ path });
    expect(await source.lookup('alice')).toEqual({
      name: 'alice',
      uid: 20001,
      gid: 20001,
      home: '/home/alice',
      gecos: 'Alice',
      shell: undefined,
      groups: [
        { name: 'alice', gid: 20001 },
        { name: 'proposal-mx1234', gid: 30001 },
      ],
      primaryGroupName: 'alice',
      notes: [],
    });
    expect(await source.lookup('nobody')).toBeNull();
    await source.close();
  });

  it('reads a JSON document the same way', async () => {
    const path = writeDirectory(JSON.stringify({ users: [{ name: 'j', uid: 3000, gid: 3000 }] }), 'dir.json');
    const source = open({ path });
    expect(await source.lookup('j')).toMatchObject({ uid: 3000, gid: 3000, groups: [] });
    await source.close();
  });

  it('reads classic passwd and group files (getent format)', async () => {
    const passwd = writeDirectory(
      'root:x:0:0:root:/root:/bin/bash\nalice:x:20001:20001:Alice L,,,:/home/alice:/bin/bash\n',
      'passwd',
    );
    const group = `${dirname(passwd)}/group`;
    writeFileSync(
      group,
      'root:x:0:\nalice:x:20001:\nusers:x:100:alice,bob\nproposal-mx1234:x:30001:bob,alice\n',
    );
    const source = open({ passwd, group });
    expect(await source.lookup('alice')).toMatchObject({
      uid: 20001,
      gid: 20001,
      gecos: 'Alice L,,,',
      home: '/home/alice',
      groups: [
        { name: 'alice', gid: 20001 },
        { name: 'users', gid: 100 },
        { name: 'proposal-mx1234', gid: 30001 },
      ],
    });
    await source.close();
  });

  it.each([
    ['a malformed uid names the attribute', { name: 'u', uid: '12a', gid: 5000 }, 'uid', /malformed uid/],
    ['a negative uid is not a number here', { name: 'u', uid: -5, gid: 5000 }, 'uid', /malformed uid/],
    ['a missing gid names the attribute', { name: 'u', uid: 5000 }, 'gid', /has no gid/],
    ['a fractional gid names the attribute', { name: 'u', uid: 5000, gid: 1.5 }, 'gid', /malformed gid/],
  ])('%s', async (_, user, attribute, message) => {
    const source = open({ path: writeDirectory({ users: [user, { name: 'ok', uid: 5001, gid: 5001 }] }) });
    const err = await source.lookup('u').catch((e: IdmountError) => e);
    expect(err).toBeInstanceOf(IdmountError);
    expect(err).toMatchObject({
      code: 'DIRECTORY_ENTRY_INVALID',
      extras: { attribute, user: 'u', source: 'f' },
    });
    expect((err as Error).message).toMatch(message);
    expect(await source.lookup('ok')).toMatchObject({ uid: 5001 });
    await source.close();
  });

  it('refuses to guess between two entries for one name', async () => {
    const source = open({
      path: writeDirectory({
        users: [
          { name: 'd', uid: 5000, gid: 5000 },
          { name: 'd', uid: 5001, gid: 5001 },
        ],
      }),
    });
    await expect(source.lookup('d')).rejects.toMatchObject({ code: 'DIRECTORY_ENTRY_INVALID' });
    await source.close();
  });

  it('re-reads the file when it changes, and keeps the last good data when the new file is broken', async () => {
    const path = writeDirectory({ users: [{ name: 'a', uid: 5000, gid: 5000 }] });
    const source = open({ path });
    writeFileSync(
      path,
      'users:\n  - { name: a, uid: 5000, gid: 5000 }\n  - { name: b, uid: 5001, gid: 5001 }\n',
    );
    await until(async () => (await source.lookup('b')) !== null);

    writeFileSync(path, 'users: [ {{{ this is not yaml\n');
    await until(async () => source.health().lastError !== undefined);
    expect(source.health()).toMatchObject({
      up: true,
      lastError: expect.stringMatching(/reload failed, serving last good data/),
    });
    expect(await source.lookup('b')).toMatchObject({ uid: 5001 });

    writeFileSync(path, 'users:\n  - { name: c, uid: 5002, gid: 5002 }\n');
    await until(async () => (await source.lookup('c')) !== null);
    expect(await source.lookup('b')).toBeNull();
    expect(source.health().lastError).toBeUndefined();
    await source.close();
  });

  it('refuses to start on a file it cannot read', () => {
    expect(() => open({ path: '/nonexistent/directory.yaml' })).toThrow(/ENOENT/);
  });
});

describe('file source ids follow the one rule every source uses', () => {
  it.each([
    ['hexadecimal', '0x4e21'],
    ['a fraction', '20001.0'],
    ['an exponent', '2.0001e4'],
    ['octal', '0o47041'],
    ["the kernel's 'no id'", '4294967295'],
    ['a sign', '+20001'],
  ])('refuses a YAML uid written as %s (%s), which YAML would read as a number', async (_, spelling) => {
    const file = writeDirectory(`users:\n  - { name: u, uid: ${spelling}, gid: 20001 }\n`);
    const err = await open({ path: file })
      .lookup('u')
      .catch((e: IdmountError) => e);
    expect(err).toMatchObject({ code: 'DIRECTORY_ENTRY_INVALID', extras: { attribute: 'uid', user: 'u' } });
  });

  it('reads a plain decimal uid, quoted or not', async () => {
    const file = writeDirectory(`users:\n  - { name: u, uid: 20001, gid: "20002" }\n`);
    await expect(open({ path: file }).lookup('u')).resolves.toMatchObject({ uid: 20001, gid: 20002 });
  });
});
