/**
 * The TypeScript kit's side of task trees (kits/typescript/src/task-context.ts): a task started inside another is
 * its child on every span; `propagationHeaders()` carries the task in W3C baggage, and a task started from such
 * headers (or with the baggage in the active context) names it; an explicit parent wins, `null` means none, and a
 * task is never its own parent.
 */
import { ROOT_CONTEXT, context, propagation } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { afterAll, describe, expect, it } from 'vitest';
import { startTelemetry } from '../../kits/typescript/src/index.ts';
import { currentTaskId } from '../../kits/typescript/src/task-context.ts';

const PARENT = 'tripline.task.parent_id';
const spans: ReadableSpan[] = [];
const exporter: SpanExporter = {
  export(batch, done) {
    spans.push(...batch);
    done({ code: ExportResultCode.SUCCESS });
  },
  shutdown: () => Promise.resolve(),
};
const telemetry = startTelemetry({ endpoint: 'http://127.0.0.1:9', agentId: 'tree-agent', exporter, exportDelayMs: 1 });

afterAll(() => telemetry.shutdown());

async function exported(name: string): Promise<ReadableSpan> {
  await telemetry.forceFlush();
  const found = spans.find((span) => span.name === name);
  if (found === undefined) throw new Error(`no span ${name}`);
  return found;
}

describe('task trees in the TypeScript kit', () => {
  it('makes a task started inside another its child, on every span, and the parent current again after', async () => {
    let outer = '';
    let inner = '';
    await telemetry.task('orchestrate_ts', async (parent) => {
      outer = parent.taskId;
      expect(parent.parentTaskId).toBeUndefined();
      expect(currentTaskId(context.active())).toBe(parent.taskId);
      await telemetry.task('summarize_ts', async (child) => {
        inner = child.taskId;
        expect(child.parentTaskId).toBe(parent.taskId);
        await child.toolCall('read_notes', { sideEffect: 'read' }, () => 'notes');
      });
      expect(currentTaskId(context.active())).toBe(parent.taskId);
    });
    expect((await exported('task summarize_ts')).attributes[PARENT]).toBe(outer);
    const tool = await exported('execute_tool read_notes');
    expect(tool.attributes[PARENT]).toBe(outer);
    expect(tool.attributes['tripline.task.id']).toBe(inner);
    expect((await exported('task orchestrate_ts')).attributes[PARENT]).toBeUndefined();
  });

  it('carries the task in W3C baggage to a task started from the request headers', async () => {
    const { parentId, headers } = await telemetry.task('caller_ts', (task) =>
      Promise.resolve({ parentId: task.taskId, headers: task.propagationHeaders() }),
    );
    expect(headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    expect(headers.baggage).toContain(`tripline.task.id=${parentId}`);
    // The callee: another agent, no task current; its server hands the request's headers over.
    const childParent = await telemetry.task('callee_ts', (task) => Promise.resolve(task.parentTaskId), {
      incomingHeaders: new Headers({ baggage: headers.baggage ?? '' }),
    });
    expect(childParent).toBe(parentId);
    // Or the server's instrumentation extracted the baggage into the active context already.
    const extracted = propagation.extract(ROOT_CONTEXT, { baggage: headers.baggage });
    const fromContext = await context.with(extracted, () =>
      telemetry.task('callee_ts', (task) => Promise.resolve(task.parentTaskId)),
    );
    expect(fromContext).toBe(parentId);
  });

  it('takes an explicit parent, none with null, and never the task itself', async () => {
    await telemetry.task('outer_ts', async () => {
      expect(
        await telemetry.task('a_ts', (task) => Promise.resolve(task.parentTaskId), { parentTaskId: 'given-1' }),
      ).toBe('given-1');
      expect(await telemetry.task('b_ts', (task) => Promise.resolve(task.parentTaskId), { parentTaskId: null })).toBe(
        undefined,
      );
    });
    await telemetry.task(
      'self_ts',
      async () => {
        expect(
          await telemetry.task('again_ts', (task) => Promise.resolve(task.parentTaskId), { taskId: 'same-id' }),
        ).toBeUndefined();
      },
      { taskId: 'same-id' },
    );
  });
});
