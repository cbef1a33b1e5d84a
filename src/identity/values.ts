// Directory values, read one way by every source: POSIX ids (one strict rule), attributes looked
// up whatever case the server spelt their names in, single- and multi-valued attributes, and the
// home paths that end up in a passwd line and a pod spec.
import { directoryEntryInvalid } from '../errors.js';

/** 2^32-1 is the kernel's "no id"; policy refuses 0 on top of this. */
export const MAX_POSIX_ID = 4_294_967_294;

/** POSIX ids: 1-10 plain ASCII decimal digits, at most 2^32-2. No sign, space, hex, fraction or exponent. */
export function parsePosixId(text: string): number | undefined {
  if (text.length === 0 || text.length > 10) return undefined;
  let id = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    id = id * 10 + digit;
  }
  return id <= MAX_POSIX_ID ? id : undefined;
}

/**
 * A POSIX id from a value of any shape (a file's or an API's attribute): only text passes — a
 * number already parsed by YAML or JSON has lost its spelling (`0x4e21`, `2.0001e4` would pass).
 */
export const readPosixId = (value: unknown): number | undefined =>
  typeof value === 'string' ? parsePosixId(value) : undefined;

/** The error for an id attribute that is missing or not a POSIX id. */
export const invalidId = (source: string, user: string, attribute: string, value: unknown) =>
  directoryEntryInvalid(
    source,
    value === undefined || value === null || value === ''
      ? `The directory entry for '${user}' has no ${attribute}.`
      : `The directory entry for '${user}' has a malformed ${attribute} (expected a decimal POSIX id).`,
    { attribute, user },
  );

/** An entry's attributes as a directory client hands them over (ldapts `Entry` fits). */
export type AttributeBag = Readonly<Record<string, unknown>>;
export type RawValue = string | Buffer;

/**
 * An attribute's raw value(s). Clients key entries by the names the server spelt, nearly always as
 * requested; another case is looked for only when the exact key is missing.
 */
export function attributeOf(entry: AttributeBag, attribute: string): unknown {
  const raw = entry[attribute];
  if (raw !== undefined) return raw;
  const wanted = attribute.toLowerCase();
  for (const key of Object.keys(entry)) if (key.toLowerCase() === wanted) return entry[key];
  return undefined;
}

const asText = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;

/** Every value of an attribute, raw (strings or Buffers). */
export function rawValues(entry: AttributeBag, attribute: string): RawValue[] {
  const raw = attributeOf(entry, attribute);
  if (raw === undefined || raw === null) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  return list.filter((v): v is RawValue => typeof v === 'string' || Buffer.isBuffer(v));
}

/** Every value of an attribute as text. */
export function textValues(entry: AttributeBag, attribute: string): string[] {
  const raw = attributeOf(entry, attribute);
  if (raw === undefined || raw === null) return [];
  if (typeof raw === 'string') return [raw];
  const out: string[] = [];
  for (const value of Array.isArray(raw) ? raw : [raw]) {
    const text = asText(value);
    if (text !== undefined) out.push(text);
  }
  return out;
}

/** The first value as text, without building the list (most attributes have one). */
export function firstText(entry: AttributeBag, attribute: string): string | undefined {
  const raw = attributeOf(entry, attribute);
  if (typeof raw === 'string') return raw;
  return asText(Array.isArray(raw) ? raw[0] : raw);
}

/**
 * An identity attribute that must have one value: several are an invalid entry (which one would
 * be the user's?); an empty value counts as absent. Only identity attributes are read this way —
 * an attribute shown in a note never invalidates an identity.
 */
export function singleText(
  entry: AttributeBag,
  attribute: string,
  source: string,
  user: string,
): string | undefined {
  const raw = attributeOf(entry, attribute);
  if (Array.isArray(raw) && raw.length > 1) {
    throw directoryEntryInvalid(
      source,
      `The directory entry for '${user}' has ${raw.length} values for ${attribute}.`,
      { attribute, user },
    );
  }
  const value = asText(Array.isArray(raw) ? raw[0] : raw);
  return value === '' ? undefined : value;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL_OR_COLON = /[\u0000-\u001f\u007f:]/;

/** A home path fit for a passwd line and a pod spec: absolute, no '..' segment, no ':' or control character. */
export const isAcceptableHome = (text: string): boolean =>
  text.startsWith('/') && !text.split('/').includes('..') && !CONTROL_OR_COLON.test(text);

/**
 * The attribute-value pairs of a DN's first RDN (`uid=alice+cn=Alice A,ou=People,...` gives
 * uid=alice and cn=Alice A), with RFC 4514 escapes undone (`\,`, `\+`, `\\`, `\2C`). Undefined
 * when the DN cannot be read.
 */
export function firstRdn(dn: string): { type: string; value: string }[] | undefined {
  const pairs: { type: string; value: string }[] = [];
  let i = 0;
  for (;;) {
    const eq = dn.indexOf('=', i);
    if (eq === -1) return undefined;
    const type = dn.slice(i, eq).trim();
    const bytes: number[] = [];
    let j = eq + 1;
    let end: string | undefined;
    while (j < dn.length) {
      const c = dn[j] as string;
      if (c === '\\') {
        const hex = dn.slice(j + 1, j + 3);
        if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
          bytes.push(Number.parseInt(hex, 16));
          j += 3;
        } else if (j + 1 < dn.length) {
          bytes.push(...Buffer.from(dn[j + 1] as string, 'utf8'));
          j += 2;
        } else return undefined;
        continue;
      }
      if (c === ',' || c === '+') {
        end = c;
        break;
      }
      bytes.push(...Buffer.from(c, 'utf8'));
      j += 1;
    }
    if (type === '') return undefined;
    pairs.push({ type, value: Buffer.from(bytes).toString('utf8').trim() });
    if (end !== '+') return pairs;
    i = j + 1;
  }
}

/**
 * The name an entry stands for when its name attribute has several values: the one in its RDN,
 * as SSSD does (one entry is one identity, whichever of its names is asked). A single value is
 * the name; several values with none in the RDN cannot be told apart (undefined).
 */
export function canonicalName(dn: string, attribute: string, names: readonly string[]): string | undefined {
  if (names.length === 1) return names[0];
  const wanted = attribute.toLowerCase();
  const fromRdn = firstRdn(dn)?.find((pair) => pair.type.toLowerCase() === wanted)?.value;
  return fromRdn !== undefined && names.includes(fromRdn) ? fromRdn : undefined;
}

/**
 * The one case-folding rule for names (case-insensitive directories, cache keys, eviction): ASCII
 * letters fold to lower case, nothing else changes. Directories fold more (LDAP's caseIgnoreMatch
 * folds Unicode): names holding a character that folds or normalises onto ASCII (the Kelvin sign,
 * long s, ligatures, full-width letters) are refused before any lookup, so the two rules agree on
 * every name that gets this far.
 */
export const foldName = (name: string): string => name.replace(/[A-Z]+/g, (run) => run.toLowerCase());

/** True when a character of `name` outside ASCII folds or normalises (NFKC) onto ASCII. */
export function foldsOntoAscii(name: string): boolean {
  for (const c of name) {
    if (c.charCodeAt(0) < 0x80) continue;
    for (const variant of [c.toLowerCase(), c.toUpperCase(), c.normalize('NFKC')]) {
      if (/[\x21-\x7e]/.test(variant)) return true;
    }
  }
  return false;
}
