/** Reading `/v1/stream` (server-sent events) in tests. */

/**
 * Reads the stream of `response` until its `ready` event; `ended` resolves once the stream ends (or the
 * connection breaks). Throws if the stream ends before it is ready.
 */
export async function streamUntilReady(response: Response): Promise<{ ended: Promise<void> }> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('event: ready')) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`the stream ended before ready: ${text}`);
    text += decoder.decode(chunk.value, { stream: true });
  }
  const ended = (async () => {
    for (;;) {
      const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (chunk.done) return;
    }
  })();
  return { ended };
}
