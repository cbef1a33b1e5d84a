import { directoryEntryInvalid, type IdmountError, sourceUnavailable } from '../../../errors.js';
import type {
  DirectoryGroup,
  DirectoryRecord,
  IdentitySource,
  SourceContext,
  SourceHealth,
} from '../../types.js';
import { isAcceptableHome, parsePosixId, readPosixId } from '../../values.js';
import { AdminApiError, createKeycloakAdminClient } from './admin-client.js';
import type { KeycloakSourceConfig } from './config.js';

interface UserRepresentation {
  id: string;
  username: string;
  enabled?: boolean;
  firstName?: string;
  lastName?: string;
  serviceAccountClientId?: string;
  attributes?: Record<string, unknown>;
}

interface GroupRepresentation {
  name: string;
  path?: string;
  attributes?: Record<string, unknown>;
}

// Keycloak names every service-account user like this; such accounts never get a POSIX identity.
const SERVICE_ACCOUNT_PREFIX = 'service-account-';
const GROUP_PAGE = 500;

/** A single-valued attribute as a string; undefined when absent. Several values are an error. */
function singleValue(
  attributes: Record<string, unknown> | undefined,
  attribute: string,
  fail: (message: string) => never,
): string | undefined {
  const value = attributes?.[attribute];
  if (value === undefined || value === null) return undefined;
  const values = Array.isArray(value) ? value : [value];
  if (values.length === 0) return undefined;
  if (values.length > 1) fail(`has ${values.length} values for the attribute '${attribute}' (expected one)`);
  if (typeof values[0] !== 'string' || values[0] === '') return undefined;
  return values[0];
}

function parseId(text: string, attribute: string, fail: (message: string) => never): number {
  const id = parsePosixId(text);
  if (id === undefined)
    fail(`has a malformed ${attribute} '${text.slice(0, 40)}' (expected a decimal POSIX id)`);
  return id;
}

function parseHome(text: string, attribute: string, fail: (message: string) => never): string {
  if (!isAcceptableHome(text)) {
    fail(`has a malformed ${attribute} '${text.slice(0, 80)}' (expected an absolute path without '..')`);
  }
  return text;
}

/** The user's identity fields from its attributes; a malformed or ambiguous one is an invalid entry. */
function toRecord(
  config: KeycloakSourceConfig,
  user: UserRepresentation,
): Omit<DirectoryRecord, 'groups' | 'notes'> {
  const fail = (message: string, attribute?: string): never => {
    throw directoryEntryInvalid(config.name, `The Keycloak user '${user.username}' ${message}.`, {
      user: user.username,
      ...(attribute === undefined ? {} : { attribute }),
    });
  };
  const read = (
    attribute: string | null,
    parse: (text: string, attribute: string) => unknown,
    required: boolean,
  ) => {
    if (attribute === null) return undefined;
    const failOn = (message: string) => fail(message, attribute);
    const text = singleValue(user.attributes, attribute, failOn);
    if (text === undefined) {
      if (!required) return undefined;
      return failOn(
        `has no ${attribute} attribute (if it is set in Keycloak, declare it in the realm's user profile: Keycloak hides undeclared attributes)`,
      );
    }
    return parse(text, attribute);
  };
  const idParser = (text: string, attribute: string) => parseId(text, attribute, (m) => fail(m, attribute));
  const homeParser = (text: string, attribute: string) =>
    parseHome(text, attribute, (m) => fail(m, attribute));
  const gecos = [user.firstName, user.lastName].filter((p) => p !== undefined && p !== '').join(' ');
  return {
    name: user.username,
    uid: read(config.attributes.uid, idParser, true) as number | undefined,
    gid: read(config.attributes.gid, idParser, true) as number | undefined,
    home: read(config.attributes.home, homeParser, false) as string | undefined,
    gecos: gecos === '' ? undefined : gecos,
  };
}

export function createKeycloakSource(config: KeycloakSourceConfig, ctx: SourceContext): IdentitySource {
  const log = ctx.log.child({ source: config.name });
  const include = config.groups.include.map((r) => new RegExp(r, 'u'));
  const exclude = config.groups.exclude.map((r) => new RegExp(r, 'u'));
  let health: SourceHealth = { up: true, since: new Date().toISOString() };
  const admin = createKeycloakAdminClient({
    issuer: config.issuer,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    timeoutMs: config.timeout,
  });

  const markUp = () => {
    if (!health.up || health.lastError !== undefined) health = { up: true, since: new Date().toISOString() };
  };
  const unavailable = (err: unknown): IdmountError => {
    const message =
      err instanceof AdminApiError ? err.message : `Keycloak cannot be reached: ${(err as Error).message}`;
    if (health.up) log.error({ err: message }, 'keycloak source is down');
    health = { up: false, lastError: message, since: health.up ? new Date().toISOString() : health.since };
    return sourceUnavailable(config.name, Math.ceil(config.retryAfter / 1000), err);
  };

  async function groupsOf(user: UserRepresentation, notes: string[]): Promise<DirectoryGroup[]> {
    const groups: DirectoryGroup[] = [];
    for (let first = 0; ; first += GROUP_PAGE) {
      const page = await admin.get<GroupRepresentation[]>(`/users/${encodeURIComponent(user.id)}/groups`, {
        briefRepresentation: 'false',
        first: String(first),
        max: String(GROUP_PAGE),
      });
      for (const group of page) {
        const path = group.path ?? `/${group.name}`;
        if (include.length > 0 && !include.some((r) => r.test(path))) continue;
        if (exclude.some((r) => r.test(path))) continue;
        const values = group.attributes?.[config.groups.gidAttribute];
        const text = Array.isArray(values) && values.length === 1 ? values[0] : undefined;
        const gid = readPosixId(text);
        if (gid === undefined) {
          notes.push(
            text === undefined
              ? `group '${path}' skipped: it has no single ${config.groups.gidAttribute} attribute`
              : `group '${path}' skipped: its ${config.groups.gidAttribute} '${String(text).slice(0, 40)}' is not a number`,
          );
          continue;
        }
        groups.push({
          name: config.groups.nameFrom === 'path' ? path.replace(/^\//, '') : group.name,
          gid,
        });
      }
      if (page.length < GROUP_PAGE) return groups;
    }
  }

  // Probe once at start (token + a read that needs view-users), so /readyz and idmount_source_up
  // show a wrong secret or a missing role before the first spawn asks.
  let closed = false;
  admin
    .get<number>('/users/count', {})
    .then(() => {
      if (!closed) markUp();
    })
    .catch((err: unknown) => {
      if (!closed) unavailable(err);
    });

  return {
    name: config.name,
    type: 'keycloak',
    // Keycloak keeps usernames in lower case and matches them case-insensitively.
    foldsCase: true,
    async lookup(username: string): Promise<DirectoryRecord | null> {
      let found: UserRepresentation[];
      try {
        found = await admin.get<UserRepresentation[]>('/users', {
          username,
          exact: 'true',
          briefRepresentation: 'false',
        });
      } catch (err) {
        throw unavailable(err);
      }
      // Keycloak stores usernames in lower case and matches exactly (case-insensitively).
      const matches = found.filter(
        (u) =>
          u.serviceAccountClientId === undefined &&
          !u.username.startsWith(SERVICE_ACCOUNT_PREFIX) &&
          u.username.toLowerCase() === username.toLowerCase(),
      );
      if (matches.length > 1) {
        throw directoryEntryInvalid(
          config.name,
          `Keycloak has ${matches.length} users named '${username}'.`,
          {
            user: username,
          },
        );
      }
      const user = matches[0];
      markUp();
      // A disabled account must not start notebooks: to idmount it does not exist.
      if (user === undefined || user.enabled === false) return null;
      const record = toRecord(config, user);
      const notes: string[] = [];
      let groups: DirectoryGroup[] | undefined;
      if (config.groups.enabled) {
        try {
          groups = await groupsOf(user, notes);
        } catch (err) {
          throw unavailable(err);
        }
      }
      return { ...record, groups, notes };
    },
    health: () => health,
    async close() {
      closed = true;
      admin.close();
    },
  };
}
