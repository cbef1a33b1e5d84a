// The `file` source's config: a YAML/JSON directory document, or passwd + group files.
import { z } from 'zod';
import { Duration, SourceName } from '../../../config/primitives.js';

export const FileSourceConfigSchema = z
  .strictObject({
    name: SourceName,
    type: z.literal('file'),
    path: z.string().optional().describe('A YAML or JSON directory document (users + groups).'),
    passwd: z.string().optional().describe('A passwd file (name:x:uid:gid:gecos:home:shell).'),
    group: z.string().optional().describe('A group file (name:x:gid:member,member); used with passwd.'),
    reloadInterval: Duration.default(2000).describe(
      'How often the files are checked for changes (stat polling survives ConfigMap symlink swaps).',
    ),
  })
  .superRefine((config, ctx) => {
    const hasDocument = config.path !== undefined;
    const hasPasswd = config.passwd !== undefined;
    if (hasDocument === hasPasswd) {
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'set either path, or passwd (with group)' });
    }
    if (hasPasswd && config.group === undefined) {
      ctx.addIssue({ code: 'custom', path: ['group'], message: 'required with passwd' });
    }
  });

export type FileSourceConfig = z.infer<typeof FileSourceConfigSchema>;
