/**
 * Which credential opened each upstream MCP session (`Mcp-Session-Id`): a request that names a session opened by
 * another credential is answered 404, as the server would answer a session it does not know. Bounded: the oldest
 * sessions are forgotten first (a forgotten session is adopted by the next credential that uses it).
 */
export class SessionOwners {
  readonly #owners = new Map<string, string>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** Whether `owner` may use the session (it opened it, or nobody is known to have). */
  allows(upstream: string, sessionId: string, owner: string): boolean {
    const known = this.#owners.get(key(upstream, sessionId));
    return known === undefined || known === owner;
  }

  opened(upstream: string, sessionId: string, owner: string): void {
    const entry = key(upstream, sessionId);
    this.#owners.delete(entry);
    this.#owners.set(entry, owner);
    if (this.#owners.size > this.#max) {
      const oldest = this.#owners.keys().next();
      if (oldest.done !== true) this.#owners.delete(oldest.value);
    }
  }

  closed(upstream: string, sessionId: string): void {
    this.#owners.delete(key(upstream, sessionId));
  }

  get size(): number {
    return this.#owners.size;
  }
}

function key(upstream: string, sessionId: string): string {
  return `${upstream}\u0000${sessionId}`;
}
