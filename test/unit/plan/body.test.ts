// The cached spawn plan's body is made from the plan object once the response schema accepted it:
// the same plan for every kind of rule and volume, on first and later use, and nothing that breaks
// the schema's guard (root, privilege escalation, capabilities, unknown fields) can leave as a body.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../../src/identity/types.js';
import { buildPlan, derivePlan } from '../../../src/plan/build.js';
import { PlanRefused, planBody, spawnPlanJsonSchema } from '../../../src/plan/guard.js';
import { parseConfig } from '../../../src/settings.js';

const config = parseConfig(
  {
    auth: { disabled: true },
    sources: [{ name: 's', type: 'file', path: 'x' }],
    home: {
      from: 'attribute',
      allowedRoots: ['/export/home'],
      volume: { nfs: { server: 'nfs-home.example.org' } },
      mountPath: '/home/jovyan/home',
    },
    data: [
      {
        name: 'proposal',
        fromGroup: '^proposal-(?<proposal>[a-z0-9]+)$',
        path: '/data/visitor/{proposal}',
        mountPath: '/data/{proposal}',
        allowedRoots: ['/data/visitor'],
        volume: { nfs: { server: 'nfs-data.example.org' } },
      },
      {
        name: 'scratch',
        fromGroup: '^beamline-(?<beamline>[a-z0-9]+)$',
        path: '/scratch/{beamline}/{username}',
        mountPath: '/scratch/{beamline}',
        readOnly: false,
        allowedRoots: ['/scratch'],
        volume: { hostPath: { type: 'Directory' } },
      },
      {
        name: 'shared',
        fromGroup: '^team-(?<team>[a-z]+)$',
        path: '/claims/teams/{team}',
        mountPath: '/teams/{team}',
        allowedRoots: ['/claims/teams'],
        volume: { pvc: { claimName: 'teams', mountedRoot: '/claims' } },
      },
      {
        name: 'common',
        path: '/data/visitor/common',
        mountPath: '/common',
        allowedRoots: ['/data/visitor'],
        volume: { nfs: { server: 'nfs-data.example.org' } },
      },
    ],
  },
  't',
);

const person = (name: string, uid: number, groups: string[], extra: Partial<Identity> = {}): Identity => ({
  name,
  uid,
  gid: uid,
  home: `/export/home/${name}`,
  gecos: `Person "${name}" \u00e9`,
  shell: '/bin/bash',
  groups: [{ name, gid: uid }, ...groups.map((g, i) => ({ name: g, gid: 40000 + i }))],
  primaryGroupName: name,
  origin: { uid: 's', gid: 's', home: 's', gecos: 's', groups: 's' },
  notes: [],
  ...extra,
});

describe('cached plan body', () => {
  const deriver = {
    derive: (identity: Identity) => derivePlan(identity, config),
    full: (identity: Identity) => ({ plan: buildPlan(identity, config) }),
  };
  const people = [
    person('alice', 20001, ['proposal-mx1', 'beamline-id11', 'team-optics', 'other']),
    person('bob', 20002, ['proposal-mx1', 'proposal-mx2', 'beamline-id11', 'team-optics']),
    person('carol', 20003, []),
    person('dave', 20004, ['proposal-mx2'], { gecos: undefined, shell: undefined, notes: ['a note'] }),
  ];

  it.each(people.map((p) => [p.name, p]))('is JSON.stringify of the plan for %s, first and again', (_, p) => {
    for (let round = 0; round < 2; round++) {
      const outcome = deriver.derive(p as Identity);
      if (!outcome.ok) throw outcome.error;
      expect(outcome.body).toBe(JSON.stringify(deriver.full(p as Identity).plan));
      expect(JSON.parse(outcome.body)).toEqual(deriver.full(p as Identity).plan);
    }
  });

  it('writes every volume kind and each member its own per-user path', () => {
    const bob = deriver.derive(people[1] as Identity);
    if (!bob.ok) throw bob.error;
    const plan = JSON.parse(bob.body);
    expect(plan.volumes.map((v: object) => Object.keys(v)[1])).toEqual([
      'nfs',
      'nfs',
      'nfs',
      'hostPath',
      'persistentVolumeClaim',
      'nfs',
    ]);
    expect(plan.volumes[3].hostPath.path).toBe('/scratch/id11/bob');
  });
});

describe('the response schema guards every body', () => {
  const plan = buildPlan(person('erin', 20005, ['proposal-mx1']), config);
  it.each([
    [
      'runAsNonRoot false',
      { containerSecurityContext: { ...plan.containerSecurityContext, runAsNonRoot: false } },
    ],
    [
      'privilege escalation',
      { containerSecurityContext: { ...plan.containerSecurityContext, allowPrivilegeEscalation: true } },
    ],
    [
      'a capability kept',
      {
        containerSecurityContext: {
          ...plan.containerSecurityContext,
          capabilities: { drop: [] as 'ALL'[], add: ['SYS_ADMIN'] },
        },
      },
    ],
    ['uid 0', { uid: 0 }],
    ['gid 0', { gid: 0 }],
    ['supplementary gid 0', { supplementalGids: [0] }],
    ['a uid that is not an integer', { uid: 20005.5 }],
    ['a field the schema does not know (never sent, where a parse would have dropped it)', { token: 'x' }],
    ['a volume the schema does not know', { volumes: [{ name: 'v', emptyDir: {} }] }],
    [
      'a seccomp profile other than RuntimeDefault',
      {
        containerSecurityContext: {
          ...plan.containerSecurityContext,
          seccompProfile: { type: 'Unconfined' },
        },
      },
    ],
    [
      'an explain trace from an unknown cache state',
      {
        explain: { cache: 'guess', sources: [], origin: {}, rules: [], droppedGroups: [], notes: [] },
      },
    ],
  ])('refuses a plan with %s', (_, change) => {
    expect(() => planBody({ ...plan, ...change } as typeof plan)).toThrow(PlanRefused);
  });

  it('names where the plan fails', () => {
    expect(() => planBody({ ...plan, uid: 0 })).toThrow('the plan fails its response schema at /uid');
  });

  it('sends an accepted plan as it is', () => {
    expect(JSON.parse(planBody(plan))).toEqual(JSON.parse(JSON.stringify(plan)));
  });

  it('checks against the schema the OpenAPI document publishes for the response, a valid JSON Schema', () => {
    const api = JSON.parse(readFileSync(join(import.meta.dirname, '../../../openapi/openapi.json'), 'utf8'));
    const published = (name: string) =>
      JSON.stringify(api.components.schemas[name]).replaceAll('#/components/schemas/', '#/$defs/');
    const schema = spawnPlanJsonSchema();
    expect(new Ajv2020({ strict: true }).validateSchema(schema)).toBe(true);
    const defs = (schema as { $defs: Record<string, unknown> }).$defs;
    expect(Object.keys(defs).sort()).toEqual(['Explain', 'SpawnPlan', 'Volume', 'VolumeMount']);
    for (const name of Object.keys(defs)) expect(JSON.stringify(defs[name])).toBe(published(name));
  });
});

describe('NSS lines, whatever policy.username.pattern allows', () => {
  it.each([
    ['a colon', 'eve:x:0:0'],
    ['a comma', 'eve,root'],
  ])('refuse a username with %s that would forge passwd or group fields', (_, name) => {
    expect(() => buildPlan(person(name, 20009, ['proposal-mx1']), config)).toThrow(
      /cannot stand in a passwd line/,
    );
  });
});
