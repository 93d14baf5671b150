/**
 * Reads server-sent events as they pass through (the gateway forwards the bytes untouched and looks at each
 * event's `data` for the response to a guarded call). Incremental: feed it chunks, it returns the complete
 * events' data. Lines end in LF, CRLF or CR (the SSE specification's three).
 */
export class SseReader {
  #buffer = '';
  #data: string[] = [];
  #decoder = new TextDecoder();
  /** A lone CR at the end of the last chunk: the next chunk's first LF belongs to it. */
  #pendingCr = false;

  /** Feeds bytes; returns the data of every event completed by them. */
  push(chunk: Uint8Array): string[] {
    let text = this.#decoder.decode(chunk, { stream: true });
    if (this.#pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.#pendingCr = text.endsWith('\r');
    this.#buffer += text;
    const events: string[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      if (match === null) break;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (this.#data.length > 0) events.push(this.#data.join('\n'));
        this.#data = [];
      } else if (line.startsWith('data:')) {
        this.#data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
    }
    return events;
  }
}
