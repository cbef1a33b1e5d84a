// The slices of an AD source's ID map that are agreed rather than hashed (./idmap.ts explains why):
// the ones pinned in the configuration (idMapping.slices), and — with a shared cache tier — the
// ones every replica agreed through it, first writer wins, kept here once learnt. A lookup that
// meets a range nobody agreed on yet claims it and runs again; the claim is never guessed, so
// while the tier cannot be reached such a lookup is a retryable 503 (ranges already agreed, the
// ones every ordinary user needs, keep working).
import { IdmountError } from '../../../errors.js';
import type { SliceAgreement } from '../../types.js';
import { type SliceBook, SliceClaimNeeded } from './idmap.js';

/** The ID map a slice agreement belongs to: one per source and id-space layout. */
export const sliceScope = (
  source: string,
  o: { rangeMin: number; rangeMax: number; rangeSize: number; autoridCompat: boolean },
) => `${source}:${o.rangeMin}-${o.rangeMax}-${o.rangeSize}${o.autoridCompat ? '-autorid' : ''}`;

/** A lookup agrees at most this many batches of slices (a user's domain, then each group domain). */
const MAX_CLAIM_ROUNDS = 8;

export function createSliceBook(options: {
  /** Range id → slice, from idMapping.slices (and the default domain's slice 0). */
  pins: ReadonlyMap<string, number>;
  agreement?: SliceAgreement | undefined;
  scope: string;
  maxSlices: number;
}) {
  const { pins, agreement, scope, maxSlices } = options;
  const learnt = new Map<string, number>();
  const pinnedTo = new Map<number, string>([...pins].map(([rangeId, slice]) => [slice, rangeId]));
  const book: SliceBook = {
    agreed: (rangeId) => pins.get(rangeId) ?? learnt.get(rangeId),
    pinnedTo: (slice) => pinnedTo.get(slice),
    shared: agreement !== undefined,
  };

  async function claim(requests: readonly { rangeId: string; origin: number }[]) {
    if (agreement === undefined) throw new Error('no shared tier to agree slices through');
    const answer = await agreement.claim(scope, maxSlices, [...pinnedTo.keys()], requests);
    // -1: the id space is full; the mapper refuses such a range as SSSD does.
    for (const [i, r] of requests.entries()) learnt.set(r.rangeId, answer[i] ?? -1);
  }

  /** Runs `attempt`, first agreeing the slices it turns out to need. */
  async function withAgreedSlices<T>(source: string, attempt: () => Promise<T>): Promise<T> {
    for (let round = 1; ; round++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof SliceClaimNeeded) || round > MAX_CLAIM_ROUNDS) throw err;
        try {
          await claim(err.requests);
        } catch (cause) {
          throw new IdmountError(
            'SOURCE_UNAVAILABLE',
            `The ID-mapping slices of ${err.requests.map((r) => r.rangeId).join(', ')} are not agreed between the replicas yet, and the shared cache tier cannot be reached; try again shortly.`,
            { extras: { source }, retryAfter: 5, cause },
          );
        }
      }
    }
  }

  return { book, claim, withAgreedSlices };
}
