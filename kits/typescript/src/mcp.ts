/**
 * Guarding an MCP client (`@modelcontextprotocol/sdk`): every `tools/call` made through the wrapped client runs
 * as a Tripline tool-call span of the task (MCP and GenAI attributes: `mcp.method.name = tools/call`,
 * `gen_ai.tool.name`, `gen_ai.operation.name = execute_tool`) and is refused with `TaskRevokedError` — before
 * the request leaves — once the task is revoked.
 *
 *   const mcp = guardMcpClient(client, task, { sideEffectOf: (name) => (name.startsWith('get_') ? 'read' : 'write') });
 *   const result = await mcp.callTool({ name: 'get_ticket', arguments: { id: 42 } });
 *
 * Other methods (listTools, readResource, …) pass through unchanged. With `forwardToken`, the task's token
 * travels in the request's `_meta["dev.tripline/task-token"]` so an MCP server or gateway can introspect it or
 * ask Tripline's request-time check.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { AGENT_ATTR as ATTR } from './conventions.ts';
import type { ToolSideEffect } from './conventions.ts';
import type { TaskHandle } from './index.ts';

export const TOKEN_META_KEY = 'dev.tripline/task-token';

export interface McpGuardOptions {
  /** The side effect of each tool (e.g. from its annotations: readOnlyHint → read, destructiveHint → destructive). */
  sideEffectOf?: (toolName: string) => ToolSideEffect | undefined;
  /** The MCP server, recorded as the tool's target. */
  target?: string;
  /** Send the task token in `_meta` (see above). @default false */
  forwardToken?: boolean;
}

type CallToolParams = Parameters<Client['callTool']>[0];
type RequestArg = Parameters<Client['request']>[0];

export function guardMcpClient<C extends Pick<Client, 'callTool' | 'request'>>(
  client: C,
  task: TaskHandle,
  options: McpGuardOptions = {},
): C {
  function withToken<P extends { _meta?: Record<string, unknown> }>(params: P): P {
    if (options.forwardToken !== true || task.token === undefined) return params;
    return { ...params, _meta: { ...params._meta, [TOKEN_META_KEY]: task.token } };
  }

  function traced<T>(name: string, work: () => Promise<T>): Promise<T> {
    const sideEffect = options.sideEffectOf?.(name);
    return task.toolCall(
      name,
      {
        type: 'mcp',
        ...(sideEffect === undefined ? {} : { sideEffect }),
        ...(options.target === undefined ? {} : { target: options.target }),
        attributes: { [ATTR.mcpMethod]: 'tools/call', [ATTR.mcpToolName]: name },
      },
      work,
    );
  }

  const callTool: Client['callTool'] = (params: CallToolParams, resultSchema, requestOptions) =>
    traced(params.name, () => client.callTool(withToken(params), resultSchema, requestOptions));

  const request = ((message: RequestArg, ...rest: unknown[]) => {
    const call = (client.request as (m: RequestArg, ...r: unknown[]) => Promise<unknown>).bind(client);
    if (message.method !== 'tools/call') return call(message, ...rest);
    const params = (message.params ?? {}) as { name?: unknown; _meta?: Record<string, unknown> };
    const name = typeof params.name === 'string' ? params.name : 'unknown';
    return traced(name, () => call({ ...message, params: withToken(params) }, ...rest));
  }) as Client['request'];

  return new Proxy(client, {
    get(target, property, receiver) {
      if (property === 'callTool') return callTool;
      if (property === 'request') return request;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
