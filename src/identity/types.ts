// The contract between the chain and every directory source (file, ldap, ad, keycloak).
import type { Logger } from 'pino';

/** A group as a directory reports it. `gid` is a number already parsed by the source. */
export interface DirectoryGroup {
  name: string;
  gid: number;
}

/**
 * What one source knows about a user. Sources parse and type-check their own attributes
 * (throwing `directoryEntryInvalid` that names the attribute); fields a source does not
 * provide are left undefined so a chain can merge them from another source.
 */
export interface DirectoryRecord {
  /** The canonical login name as the directory spells it. */
  name: string;
  uid?: number;
  gid?: number;
  home?: string;
  gecos?: string;
  shell?: string;
  /** Supplementary groups (the primary group may be among them). Undefined: this source does not know groups. */
  groups?: DirectoryGroup[];
  /** Name of the primary group when the source resolved it (user-private groups). */
  primaryGroupName?: string;
  /** Human-readable notes for `?explain=true` (e.g. groups skipped, SIDs decoded). */
  notes?: string[];
}

export interface SourceHealth {
  up: boolean;
  /** Last error message (never secrets), when the last operation failed. */
  lastError?: string;
  /** ISO time of the last state change or probe. */
  since: string;
}

/**
 * One directory. `lookup` returns null when the user does not exist there, throws
 * `sourceUnavailable` when the directory cannot be asked, and `directoryEntryInvalid`
 * when an entry exists but is malformed or ambiguous.
 */
export interface IdentitySource {
  readonly name: string;
  readonly type: string;
  /** True when the directory matches names case-insensitively (ASCII case, see values.foldName). */
  readonly foldsCase?: boolean;
  lookup(username: string): Promise<DirectoryRecord | null>;
  health(): SourceHealth;
  close(): Promise<void>;
}

/** A complete identity after the chain is merged; what policy and the mount planner consume. */
export interface Identity {
  name: string;
  uid: number;
  gid: number;
  home?: string;
  gecos?: string;
  shell?: string;
  groups: DirectoryGroup[];
  primaryGroupName?: string;
  /** Which source gave each field. */
  origin: Record<'uid' | 'gid' | 'home' | 'groups' | 'gecos', string | undefined>;
  notes: string[];
}

/**
 * Agrees AD ID-mapping slices between replicas (the shared cache tier): the slice each range id
 * gets, first writer wins, in the order asked. Throws when the agreement cannot be reached.
 */
export interface SliceAgreement {
  claim(
    scope: string,
    maxSlices: number,
    pinned: readonly number[],
    requests: readonly { rangeId: string; origin: number }[],
  ): Promise<(number | undefined)[]>;
}

/** What a source is built with besides its own config. */
export interface SourceContext {
  log: Logger;
  /** Relative paths in a source config resolve against this (the config file's folder). */
  baseDir: string;
  /** With a shared cache tier: where AD ID-mapping slices are agreed. */
  slices?: SliceAgreement | undefined;
}
