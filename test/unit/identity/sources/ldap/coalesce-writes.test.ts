// The write coalescing relies on how ldapts 9 writes requests (one socket.write per request on the
// socket our createConnection returns); the relay test in test/integration/ldap/connection.test.ts
// proves the effect against slapd. This pins the major it was measured on.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../../../../src/identity/sources/ldap/coalesce-writes.js';

const ROOT = new URL('../../../../../', import.meta.url);

describe('LDAP write coalescing', () => {
  it('is pinned to the ldapts major it was measured with (9)', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8'));
    expect(pkg.dependencies.ldapts).toMatch(/^[~^]9\./);
    const installed = JSON.parse(readFileSync(new URL('node_modules/ldapts/package.json', ROOT), 'utf8'));
    expect(installed.version.split('.')[0]).toBe('9');
  });

  it('sends the writes of one turn of the event loop in one segment, in order', async () => {
    const received: Buffer[] = [];
    const server = net.createServer((socket) => socket.on('data', (chunk) => received.push(chunk)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const socket = coalesceWrites(net.connect(port, '127.0.0.1'));
    await new Promise((r) => socket.once('connect', r));
    for (const part of ['one,', 'two,', 'three']) socket.write(part);
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    server.close();
    expect(Buffer.concat(received).toString()).toBe('one,two,three');
    expect(received).toHaveLength(1);
  });
});
