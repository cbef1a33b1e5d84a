// `idmount lookup NAME`: the spawn plan an admin would get from the API, resolved in-process
// from a config, printed for a person (or as JSON).
import { pino } from 'pino';
import { createIdentityService } from '../compose.js';
import { IdmountError } from '../errors.js';
import type { LoadedConfig } from '../settings.js';

export async function lookup(
  loaded: LoadedConfig,
  name: string,
  options: { explain: boolean; json: boolean },
) {
  const { config } = loaded;
  const log = pino({ level: 'warn' }, pino.destination(2));
  const { plans, resolver, checkUsername, close } = createIdentityService(config, {
    log,
    baseDir: loaded.baseDir,
  });
  try {
    checkUsername(name);
    const resolution = await resolver.resolve(name);
    const { plan, explain: trace } = plans.explain(resolution.identity);
    const explain = { cache: resolution.cache, sources: resolution.attempts, ...trace };
    if (options.json) {
      const body = options.explain ? { ...plan, explain } : plan;
      return { output: `${JSON.stringify(body, null, 2)}\n`, exitCode: 0 };
    }
    const lines = [
      `${plan.username}: uid ${plan.uid}, gid ${plan.gid}, supplemental ${plan.supplementalGids.join(', ') || 'none'} (source ${plan.source})`,
      `HOME ${plan.environment.HOME}`,
      ...plan.volumeMounts.map((m) => {
        const v = plan.volumes.find((x) => x.name === m.name);
        const from = v?.nfs
          ? `nfs ${v.nfs.server}:${v.nfs.path}`
          : v?.hostPath
            ? `hostPath ${v.hostPath.path}`
            : `pvc ${v?.persistentVolumeClaim?.claimName} subPath ${m.subPath}`;
        return `mount ${m.mountPath} <- ${from} (${m.readOnly ? 'read-only' : 'read-write'})`;
      }),
    ];
    if (options.explain) {
      lines.push(`sources: ${explain.sources.map((s) => `${s.source} ${s.result}`).join('; ')}`);
      lines.push(
        ...explain.rules.map(
          (r) => `rule ${r.rule}${r.group ? ` [${r.group}]` : ''}: ${r.outcome} — ${r.reason}`,
        ),
      );
      lines.push(...explain.droppedGroups.map((g) => `dropped group ${g.name} (${g.gid}): ${g.reason}`));
      lines.push(...explain.notes.map((n) => `note: ${n}`));
    }
    return { output: `${lines.join('\n')}\n`, exitCode: 0 };
  } catch (err) {
    if (err instanceof IdmountError) {
      const body = { code: err.code, detail: err.message, ...err.extras };
      return {
        output: options.json ? `${JSON.stringify(body, null, 2)}\n` : `${err.code}: ${err.message}\n`,
        exitCode: err.code === 'USER_NOT_FOUND' ? 3 : 1,
      };
    }
    throw err;
  } finally {
    await close();
  }
}
