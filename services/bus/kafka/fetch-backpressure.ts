/**
 * The source's back-pressure (see source.ts, Pipelining): how many fetches are handed over and not yet committed,
 * since when the oldest of them is on its way (for the watchdog), and waiting until there is room for another.
 */

/** Where the source's consumer stands, shared by its parts. */
export interface SourceFlags {
  /** `stop()` was called. */
  stopRequested: boolean;
  /** The member left the group because a fetch was not written for max.poll.interval (see the watchdog). */
  expelled: boolean;
}

export class FetchBackPressure {
  private readonly maxUncommitted: number;
  private readonly flags: Readonly<SourceFlags>;
  /** Fetches handed over (or on their way) and not yet committed or failed. */
  private uncommittedFetches = 0;
  private readonly roomWaiters: (() => void)[] = [];
  /** When each fetch on its way was handed over, oldest first (they complete in order). */
  private readonly outstanding: number[] = [];

  constructor(maxUncommittedFetches: number | undefined, flags: Readonly<SourceFlags>) {
    this.maxUncommitted = Math.max(1, maxUncommittedFetches ?? 4);
    this.flags = flags;
  }

  uncommitted(): number {
    return this.uncommittedFetches;
  }

  /** When the oldest fetch on its way was handed over (undefined: none is). */
  oldestHandedOverAt(): number | undefined {
    return this.outstanding[0];
  }

  /** A fetch is on its way. */
  taken(): void {
    this.uncommittedFetches += 1;
    this.outstanding.push(Date.now());
  }

  /** The oldest fetch on its way is committed or failed. */
  freed(): void {
    this.uncommittedFetches -= 1;
    this.outstanding.shift();
    this.wake();
  }

  /**
   * Waits until fewer than `maxUncommitted` fetches are on their way (the one just handed over counts), so that
   * kafkajs fetches the next one only while there is room for it.
   */
  async room(): Promise<void> {
    while (this.uncommittedFetches >= this.maxUncommitted && !this.flags.expelled && !this.flags.stopRequested)
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  wake(): void {
    for (const wake of this.roomWaiters.splice(0)) wake();
  }
}
