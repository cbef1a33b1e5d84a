// The policy section: which usernames may be looked up at all, and which uid/gid ranges and
// supplementary groups an identity may carry into a notebook.
import { z } from 'zod';
import { RegexString } from '../config/primitives.js';

export const PolicySchema = z
  .strictObject({
    username: z
      .strictObject({
        pattern: RegexString.default('^[A-Za-z0-9_][A-Za-z0-9_.@-]*$').describe(
          'Regular expression a username must match before any lookup.',
        ),
        maxLength: z.number().int().min(1).max(256).default(64).describe('Longest accepted username.'),
      })
      .prefault({}),
    minUid: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Lowest uid accepted; 0 is refused whatever this says.'),
    maxUid: z
      .number()
      .int()
      .min(1)
      .max(4_294_967_294)
      .default(4_294_967_294)
      .describe('Highest uid accepted.'),
    minGid: z.number().int().min(1).default(1000).describe('Lowest primary or supplemental gid accepted.'),
    maxGid: z
      .number()
      .int()
      .min(1)
      .max(4_294_967_294)
      .default(4_294_967_294)
      .describe('Highest gid accepted.'),
    alwaysAllowGids: z
      .array(z.number().int().min(1))
      .default([100])
      .describe('Supplemental gids kept when the directory lists them, even below minGid.'),
    extraGids: z
      .array(z.number().int().min(1))
      .default([100])
      .describe("Supplemental gids every plan gets (100 'users': docker-stacks' conda needs it)."),
  })
  .prefault({});

export type PolicyConfig = z.output<typeof PolicySchema>;
