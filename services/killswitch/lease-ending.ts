/**
 * Ending leases at their provider: when the task releases one, when it expires, when the task ends or is
 * revoked. A provider that fails leaves the lease `revoke_failed` (which the kill's verification reports), and
 * the sweep retries it until the provider confirms. A lease revoked by a provider that cannot stop a value
 * already handed out (the built-in store) is recorded `revoked_at_tripline_only`.
 */
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { KillSwitchStore, LeaseRecord, LeaseStatus } from './ks-store.ts';
import type { OpenLeases } from './open-leases.ts';
import type { SecretProvider } from './secrets.ts';

export interface EndResult {
  /** Leases ended at their provider. */
  ended: number;
  /** Leases whose provider did not confirm (ids with the reason). */
  failed: string[];
  /** Leases ended at Tripline only: their provider cannot stop a value already handed out (the built-in store). */
  atTriplineOnly?: string[];
}

/** What a lease ended at Tripline only says: the value handed out still works at the system it unlocks. */
export const AT_TRIPLINE_ONLY =
  'revoked at Tripline only: the value was handed out and still works at its system; rotate it there';

/** What ending a lease needs: the providers, where lease states are recorded, the open leases, the clock. */
export interface LeaseBook {
  store: KillSwitchStore;
  providers: readonly SecretProvider[];
  logger: Logger;
  open: OpenLeases;
  now: () => number;
  /** Versions make the newest state of a lease win. */
  nextVersion(): number;
}

/** Ends one lease at its provider and records the new status. Never throws; resolves the provider's failure, if any. */
export async function endLease(
  book: LeaseBook,
  lease: LeaseRecord,
  status: Exclude<LeaseStatus, 'active' | 'revoke_failed' | 'revoked_at_tripline_only'>,
  reason: string,
): Promise<string | undefined> {
  const { store, logger, open } = book;
  let failure: string | undefined;
  const provider = book.providers.find((candidate) => candidate.name === lease.provider);
  try {
    if (provider === undefined) throw new Error(`provider ${lease.provider} is not configured`);
    await provider.revoke(lease, reason);
  } catch (error) {
    failure = messageOf(error);
  }
  const endedMs = book.now();
  const onlyHere = status === 'revoked' && provider?.revokesAtSource === false;
  const next: LeaseRecord =
    failure === undefined
      ? {
          ...lease,
          status: onlyHere ? 'revoked_at_tripline_only' : status,
          endedMs,
          endReason: onlyHere ? `${reason}; ${AT_TRIPLINE_ONLY}` : reason,
          version: book.nextVersion(),
        }
      : {
          ...lease,
          status: 'revoke_failed',
          endedMs,
          endReason: `${reason}; provider: ${failure}`,
          version: book.nextVersion(),
        };
  if (failure === undefined) open.drop(lease);
  else open.hold(next);
  try {
    await store.upsertLeases([next]);
  } catch (error) {
    logger.error({ leaseId: lease.id, err: messageOf(error) }, 'recording a lease state failed');
  }
  if (failure !== undefined)
    logger.error(
      { leaseId: lease.id, secret: lease.secret, provider: lease.provider, err: failure },
      'a lease could not be ended at its provider; retrying',
    );
  return failure;
}

/** Ends the given leases together and sums up. */
export async function endLeases(
  book: LeaseBook,
  leases: readonly LeaseRecord[],
  how: 'revoked' | 'released',
  reason: string,
): Promise<EndResult> {
  const failures = await Promise.all(leases.map((lease) => endLease(book, lease, how, reason)));
  const failed = leases.flatMap((lease, index) =>
    failures[index] === undefined
      ? []
      : [`lease ${lease.id} (${lease.secret}, ${lease.provider}): ${failures[index] ?? ''}`],
  );
  const atTriplineOnly =
    how !== 'revoked'
      ? []
      : leases.flatMap((lease, index) =>
          failures[index] === undefined &&
          book.providers.find((candidate) => candidate.name === lease.provider)?.revokesAtSource === false
            ? [`lease ${lease.id} (${lease.secret}, ${lease.provider})`]
            : [],
        );
  return { ended: leases.length - failed.length, failed, ...(atTriplineOnly.length > 0 ? { atTriplineOnly } : {}) };
}

/** Ends expired leases and retries the revocations providers failed. */
export async function sweepLeases(book: LeaseBook): Promise<void> {
  const nowMs = book.now();
  const work: Promise<unknown>[] = [];
  for (const lease of book.open.all()) {
    if (lease.status === 'revoke_failed')
      work.push(endLease(book, lease, 'revoked', lease.endReason.split('; provider:')[0] ?? 'revoked'));
    else if (lease.expiresMs <= nowMs) work.push(endLease(book, lease, 'expired', 'the lease expired'));
  }
  await Promise.all(work);
}
