// The mounts' config sections: the home directory rule, data rules and volume kinds.
import { z } from 'zod';
import { AbsolutePath, RegexString, ResourceName } from '../config/primitives.js';

const CSI_ATTRIBUTE = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;

export const VolumeSourceSchema = z
  .union([
    z.strictObject({
      nfs: z.strictObject({
        server: z.string().min(1).describe('NFS server host name.'),
      }),
    }),
    z.strictObject({
      hostPath: z
        .strictObject({
          type: z
            .enum(['Directory', 'DirectoryOrCreate', ''])
            .default('Directory')
            .describe('hostPath type; Directory refuses to create missing paths.'),
        })
        .prefault({}),
    }),
    z.strictObject({
      csi: z.strictObject({
        driver: z
          .string()
          .regex(/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/, 'expected a CSI driver name, e.g. nfs.csi.k8s.io')
          .describe(
            'The CSI driver of the inline volume: nfs.csi.k8s.io (csi-driver-nfs), cephfs.csi.ceph.com, …',
          ),
        pathAttribute: z
          .string()
          .regex(CSI_ATTRIBUTE, 'expected a volume attribute name')
          .default('share')
          .describe(
            "The volume attribute that receives the rule's confined path: csi-driver-nfs's `share` (default) or `subDir`, CephFS's `rootPath`.",
          ),
        volumeAttributes: z
          .record(
            z.string().regex(CSI_ATTRIBUTE, 'expected a volume attribute name'),
            // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
            z.string().refine((v) => !/[{}\u0000-\u001f]/.test(v), 'no braces or control characters'),
          )
          .default({})
          .describe(
            'The other attributes, as the driver reads them, e.g. { server: nfs.example.org, mountOptions: "nfsvers=4.1,hard" }. Fixed text: only the path comes from the directory.',
          ),
      }),
    }),
    z.strictObject({
      pvc: z.strictObject({
        claimName: z.string().min(1).describe('An existing PersistentVolumeClaim.'),
        mountedRoot: AbsolutePath.describe(
          'The directory path that is the root of the claim; the plan mounts it with subPath = path relative to this.',
        ),
      }),
    }),
  ])
  .describe(
    'Volume kind: { nfs: { server } }, { hostPath: { type } }, { csi: { driver, pathAttribute, volumeAttributes } } or { pvc: { claimName, mountedRoot } }. Pod Security: csi and pvc are allowed under "restricted", nfs needs "baseline", hostPath "privileged".',
  );

export type VolumeSource = z.infer<typeof VolumeSourceSchema>;

/** The Pod Security level (the least permissive) a namespace needs to admit a volume of this kind. */
export type PodSecurityLevel = 'restricted' | 'baseline' | 'privileged';

export function podSecurityLevel(source: VolumeSource): PodSecurityLevel {
  if ('hostPath' in source) return 'privileged';
  if ('nfs' in source) return 'baseline';
  return 'restricted';
}

const RewriteSchema = z.strictObject({
  from: RegexString.describe('Regular expression matched against the directory value.'),
  to: z.string().describe('Replacement (JavaScript replace syntax, $1 or $<name>).'),
});

export const HomeRuleSchema = z
  .strictObject({
    from: z
      .enum(['attribute', 'template'])
      .describe('attribute: the directory home attribute; template: a path built from `template`.'),
    template: z
      .string()
      .optional()
      .describe(
        'Path template with {username}, {initial} (first letter), {uid} and {gid}, e.g. /users/{username}.',
      ),
    rewrite: z
      .array(RewriteSchema)
      .default([])
      .describe('Prefix rewrites applied to the attribute; first match wins.'),
    allowedRoots: z
      .array(AbsolutePath)
      .min(1)
      .describe('The final path must lie strictly under one of these.'),
    volume: VolumeSourceSchema,
    mountPath: AbsolutePath.describe('Where the home directory appears in the container; HOME points here.'),
    readOnly: z.boolean().default(false),
  })
  .superRefine((rule, ctx) => {
    if (rule.from === 'template' && rule.template === undefined) {
      ctx.addIssue({ code: 'custom', path: ['template'], message: 'required when from is template' });
    }
    if (rule.template !== undefined) checkPlaceholders(rule.template, BASE_PLACEHOLDERS, ctx, 'template');
    checkPlaceholders(rule.mountPath, BASE_PLACEHOLDERS, ctx, 'mountPath');
  });

const BASE_PLACEHOLDERS = ['username', 'initial', 'uid', 'gid'];

/** Every {placeholder} in a template must be one the planner can fill. */
function checkPlaceholders(template: string, known: string[], ctx: z.RefinementCtx, path: string) {
  for (const [, key] of template.matchAll(/\{([^}]*)\}/g)) {
    if (!known.includes(key as string)) {
      ctx.addIssue({
        code: 'custom',
        path: [path],
        message: `unknown placeholder {${key}}; use ${known.map((k) => `{${k}}`).join(', ')}`,
      });
    }
  }
}

const captureNames = (regex: string | undefined) =>
  regex === undefined
    ? []
    : [...regex.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((m) => m[1] as string);

export const DataRuleSchema = z
  .strictObject({
    name: ResourceName.describe('Rule name; used in volume names and explain traces.'),
    fromGroup: RegexString.optional().describe(
      'Regular expression over group names; named captures feed the templates. Unset: a static mount for everyone.',
    ),
    path: z
      .string()
      .min(1)
      .describe('Path template: {username}, {uid}, {gid}, {initial}, {group} and named captures.'),
    mountPath: z.string().min(1).describe('Container path template, same placeholders.'),
    readOnly: z.boolean().default(true).describe('Data is read-only unless a rule says otherwise.'),
    allowedRoots: z.array(AbsolutePath).min(1).describe('The final path must lie under one of these.'),
    volume: VolumeSourceSchema,
  })
  .superRefine((rule, ctx) => {
    const known = [
      ...BASE_PLACEHOLDERS,
      ...(rule.fromGroup === undefined ? [] : ['group', ...captureNames(rule.fromGroup)]),
    ];
    checkPlaceholders(rule.path, known, ctx, 'path');
    checkPlaceholders(rule.mountPath, known, ctx, 'mountPath');
    for (const key of ['path', 'mountPath'] as const) {
      if (!rule[key].startsWith('/') || rule[key].split('/').includes('..')) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'expected an absolute path template without ".."',
        });
      }
    }
  });

export type HomeRule = z.infer<typeof HomeRuleSchema>;
export type DataRule = z.infer<typeof DataRuleSchema>;

export const MountsConfigShape = {
  home: HomeRuleSchema.optional().describe(
    'How the home directory is found and mounted. Unset: no home mount.',
  ),
  data: z
    .array(DataRuleSchema)
    .default([])
    .superRefine((rules, ctx) => {
      const seen = new Set<string>();
      rules.forEach((rule, i) => {
        if (seen.has(rule.name))
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'duplicate rule name' });
        seen.add(rule.name);
      });
    })
    .describe('Data mounts: from group rules or static.'),
};
