// The passwd and group lines the NSS init container appends to the image's files, so the
// container's uid has a name ("I have no name!" otherwise). Fields are ':'-separated, members
// ','-separated, entries newline-separated: a value holding any of them (or a control character)
// would forge another entry. Braces are refused too: KubeSpawner str.format()s what it is given.
import type { DirectoryGroup } from '../identity/types.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const NSS_UNSAFE = /[:,{}\n\r\u0000-\u001f\u007f]/;

/** True when `value` can stand in a passwd or group field as it is. */
export const nssSafe = (value: string): boolean => value.length > 0 && !NSS_UNSAFE.test(value);

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const NSS_SEPARATORS = /[:,\n\r\u0000-\u001f\u007f]/;

/**
 * A login name in a passwd or group line: no separator or control character. Braces are allowed
 * (JupyterHub accepts them; the spawner escapes every value for KubeSpawner's str.format).
 */
export const nssName = (name: string): boolean => name.length > 0 && !NSS_SEPARATORS.test(name);

export interface NssUser {
  name: string;
  uid: number;
  gid: number;
  gecos: string | undefined;
  home: string;
  shell: string;
}

export interface NssLines {
  passwd: string[];
  group: string[];
  /** What was left out and why (explain notes). */
  notes: string[];
}

export function nssLines(user: NssUser, groups: readonly DirectoryGroup[]): NssLines {
  const notes: string[] = [];
  let gecos = user.gecos ?? '';
  // GECOS is ','-separated sub-fields by convention: commas stay, everything else unsafe goes.
  if (gecos !== '' && !nssSafe(gecos.replaceAll(',', ''))) {
    notes.push('gecos left out of the passwd line: it holds a separator, brace or control character');
    gecos = '';
  }
  const group: string[] = [];
  for (const g of groups) {
    if (!nssSafe(g.name)) {
      notes.push(`group gid ${g.gid} has a name unusable in /etc/group; its gid is still granted`);
      continue;
    }
    group.push(`${g.name}:x:${g.gid}:${g.gid === user.gid ? '' : user.name}`);
  }
  return {
    passwd: [`${user.name}:x:${user.uid}:${user.gid}:${gecos}:${user.home}:${user.shell}`],
    group,
    notes,
  };
}
