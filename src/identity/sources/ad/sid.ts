// Windows security identifiers (SIDs): the binary objectSid form AD returns, the `S-1-5-21-...`
// text form people and SSSD use, and the split into domain SID + RID that ID mapping needs.

/** A SID has at most 15 sub-authorities (MS-DTYP 2.4.2). */
const MAX_SUB_AUTHORITIES = 15;
/** SSSD maps only SIDs of the form S-1-5-21-<a>-<b>-<c>-<rid> (a domain SID plus one RID). */
const DOMAIN_SID = /^S-1-5-21-(\d{1,10})-(\d{1,10})-(\d{1,10})$/;
const OBJECT_SID = /^(S-1-5-21-\d{1,10}-\d{1,10}-\d{1,10})-(\d{1,10})$/;
const TEXT_SID = /^S-1-(\d{1,15}|0x[0-9A-F]{12})((?:-\d{1,10}){0,15})$/;
const UINT32_MAX = 0xffff_ffff;

/** Decodes a binary SID (as AD stores objectSid) to its text form; throws on malformed input. */
export function decodeSid(bytes: Uint8Array): string {
  if (bytes.length < 8) throw new Error(`a SID needs at least 8 bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const revision = view.getUint8(0);
  const count = view.getUint8(1);
  if (revision !== 1) throw new Error(`unsupported SID revision ${revision}`);
  if (count > MAX_SUB_AUTHORITIES) throw new Error(`a SID has at most 15 sub-authorities, got ${count}`);
  if (bytes.length !== 8 + 4 * count) {
    throw new Error(`a SID with ${count} sub-authorities has ${8 + 4 * count} bytes, got ${bytes.length}`);
  }
  // The identifier authority is a 48-bit big-endian number; MS-DTYP prints it in hex when >= 2^32.
  const authority = view.getUint16(2) * 2 ** 32 + view.getUint32(4);
  const authorityText =
    authority < 2 ** 32 ? String(authority) : `0x${authority.toString(16).toUpperCase().padStart(12, '0')}`;
  const parts = [`S-${revision}-${authorityText}`];
  for (let i = 0; i < count; i++) parts.push(String(view.getUint32(8 + 4 * i, true)));
  return parts.join('-');
}

/** Encodes a text SID to the binary form (for objectSid filters and test fixtures). */
export function encodeSid(sid: string): Buffer {
  const match = TEXT_SID.exec(sid);
  if (match === null) throw new Error(`not a SID: ${JSON.stringify(sid)}`);
  const [, authorityText, rest] = match as unknown as [string, string, string];
  const authority = Number(authorityText);
  const subs = rest === '' ? [] : rest.slice(1).split('-').map(Number);
  if (!Number.isSafeInteger(authority) || authority >= 2 ** 48 || subs.some((s) => s > UINT32_MAX)) {
    throw new Error(`SID component out of range: ${sid}`);
  }
  const out = Buffer.alloc(8 + 4 * subs.length);
  out.writeUInt8(1, 0);
  out.writeUInt8(subs.length, 1);
  out.writeUInt16BE(Math.floor(authority / 2 ** 32), 2);
  out.writeUInt32BE(authority % 2 ** 32, 4);
  for (const [i, s] of subs.entries()) out.writeUInt32LE(s, 8 + 4 * i);
  return out;
}

/** True for a domain SID as SSSD accepts it: S-1-5-21 and three 32-bit sub-authorities. */
export function isDomainSid(sid: string): boolean {
  return (
    DOMAIN_SID.exec(sid)
      ?.slice(1)
      .every((n) => Number(n) <= UINT32_MAX) ?? false
  );
}

/** Splits `S-1-5-21-a-b-c-rid` into its domain SID and RID; undefined for any other shape. */
export function splitObjectSid(sid: string): { domainSid: string; rid: number } | undefined {
  const match = OBJECT_SID.exec(sid);
  if (match === null) return undefined;
  const [, domainSid, ridText] = match as unknown as [string, string, string];
  const rid = Number(ridText);
  if (!isDomainSid(domainSid) || rid > UINT32_MAX) return undefined;
  return { domainSid, rid };
}
