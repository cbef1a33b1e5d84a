// A small Keycloak Admin REST API client for one realm: the service-account access token comes
// from openid-client (discovery + client-credentials grant), is cached until shortly before it
// expires, refreshed by one request at a time, and renewed once when Keycloak answers 401.
import * as oidc from 'openid-client';

export interface AdminClientOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  timeoutMs: number;
}

/** A failure worth telling an operator about; the message never holds a secret. */
export class AdminApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AdminApiError';
  }
}

// Renew this long before expiry so a token never dies between being read and being used.
const EXPIRY_MARGIN_MS = 30_000;

export function createKeycloakAdminClient(options: AdminClientOptions) {
  const issuer = new URL(options.issuer.replace(/\/$/, ''));
  const [, base, realm] = /^(.*)\/realms\/([^/]+)$/.exec(issuer.pathname) as unknown as [
    string,
    string,
    string,
  ];
  const adminBase = `${issuer.origin}${base}/admin/realms/${realm}`;
  let configuration: Promise<oidc.Configuration> | undefined;
  let token: { value: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;

  const discover = (): Promise<oidc.Configuration> => {
    configuration ??= oidc
      .discovery(issuer, options.clientId, undefined, oidc.ClientSecretPost(options.clientSecret), {
        timeout: Math.ceil(options.timeoutMs / 1000),
        // In-cluster Keycloak is often plain http on its Service; https is the norm outside.
        ...(issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      })
      .catch((err: unknown) => {
        configuration = undefined;
        throw new AdminApiError(`OIDC discovery at ${issuer.href} failed: ${describe(err)}`, undefined, {
          cause: err,
        });
      });
    return configuration;
  };

  const fetchToken = async (): Promise<string> => {
    const config = await discover();
    const started = Date.now();
    try {
      const response = await oidc.clientCredentialsGrant(config);
      const lifetimeMs = (response.expires_in ?? 60) * 1000;
      token = {
        value: response.access_token,
        renewAt: started + Math.max(lifetimeMs - EXPIRY_MARGIN_MS, lifetimeMs / 2),
      };
      return response.access_token;
    } catch (err) {
      throw new AdminApiError(
        `the client-credentials grant for '${options.clientId}' failed: ${describe(err)}`,
        undefined,
        {
          cause: err,
        },
      );
    }
  };

  /** The cached token, or a fresh one; concurrent callers share one token request. */
  const accessToken = (): Promise<string> => {
    if (token !== undefined && Date.now() < token.renewAt) return Promise.resolve(token.value);
    pending ??= fetchToken().finally(() => {
      pending = undefined;
    });
    return pending;
  };

  async function get<T>(path: string, query: Record<string, string>): Promise<T> {
    const url = `${adminBase}${path}?${new URLSearchParams(query)}`;
    for (let attempt = 0; ; attempt++) {
      const bearer = await accessToken();
      let response: Response;
      try {
        response = await fetch(url, {
          headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' },
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (err) {
        throw new AdminApiError(`the Admin API request failed: ${describe(err)}`, undefined, { cause: err });
      }
      if (response.status === 401 && attempt === 0) {
        // Revoked, or Keycloak restarted with new keys: one fresh token, one retry.
        await response.body?.cancel();
        if (token?.value === bearer) token = undefined;
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new AdminApiError(
          response.status === 403
            ? `the Admin API refused '${options.clientId}' (403): its service account needs the realm-management role view-users`
            : `the Admin API answered ${response.status}`,
          response.status,
        );
      }
      try {
        return (await response.json()) as T;
      } catch (err) {
        throw new AdminApiError(`the Admin API sent a body that is not JSON: ${describe(err)}`, undefined, {
          cause: err,
        });
      }
    }
  }

  return {
    get,
    /** Forgets the cached token (tests; a credential rotation). */
    forgetToken() {
      token = undefined;
    },
    close() {
      token = undefined;
      configuration = undefined;
    },
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    const oauthError = (err as { error?: unknown }).error;
    return [
      typeof code === 'string' ? code : undefined,
      typeof oauthError === 'string' ? oauthError : undefined,
      err.message + cause,
    ]
      .filter((p) => p !== undefined)
      .join(' ');
  }
  return String(err);
}
