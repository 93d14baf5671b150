/**
 * The Python agent kit (`kits/python`, the `tripline` wheel installed with pip the way a user installs it; see
 * test/helpers/python-kit.ts) against Tripline started as `npm start` does, for two integrations:
 *
 * - pydantic_ai: a pydantic-ai agent (scripted `FunctionModel`, pydantic-ai's own instrumentation) with the kit's
 *   `TriplineGuard` capability (kits/python/tests/e2e/pydantic_ai_agent.py);
 * - mcp: an MCP client (the official `mcp` package) whose session is wrapped by `guard_mcp_session`, against a real
 *   MCP server started over stdio (kits/python/tests/e2e/mcp_agent.py, mcp_server.py).
 *
 * First the kit's unit tests run in the same environment (kits/python/tests/unit: the SSE parser, the guard against a
 * local stand-in of the API, the task context, the MCP session against an in-process server).
 *
 * For each, with an agent and a task type of its own: benign warm-up tasks until the type has its baseline, then a
 * mixed run: benign tasks, and one that exfiltrates (exports the customers, then `http_post` to a host the type never
 * saw, a tool it never used), waits for Tripline to revoke it and makes one more call (a refund). Expected: the
 * detector revokes that task; its next call raises `TaskRevokedError` and never runs (pydantic-ai: the tool function
 * did not run; MCP: the server never received it); the guard acknowledged the revocation and Tripline verified the
 * agent stopped (no event of the task after it); every benign task ran all its calls, completed and was not revoked.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Call } from '../helpers/agent-plans.ts';
import { KIT_DIR, runKitModule } from '../helpers/python-kit.ts';
import { AFTER_REVOCATION, describeKitIntegrations } from '../helpers/python-kit-e2e.ts';

const SERVER_LOG = 'mcp-server-calls.jsonl';

describeKitIntegrations(
  'the Python kit (tripline wheel) against Tripline',
  [
    { name: 'pydantic_ai' },
    {
      name: 'mcp',
      agentArgs: (workDir) => ['--server-log', join(workDir, SERVER_LOG)],
      checkMixed: ({ warmup, mixed, workDir }) => {
        // The server's own log: every call that reached it. The refused one never did.
        const served = readFileSync(join(workDir, SERVER_LOG), 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Call);
        expect(served.filter((call) => call.args.order_id === AFTER_REVOCATION.args.order_id)).toEqual([]);
        expect(served.filter((call) => call.tool === 'http_post')).toHaveLength(1);
        expect(served).toHaveLength([...warmup, ...mixed].flatMap((outcome) => outcome.ran).length);
      },
    },
  ],
  {
    seed: 41,
    more: () => {
      it("passes the kit's own unit tests (kits/python/tests/unit) in the installed wheel's environment", async () => {
        const { stderr } = await runKitModule(
          ['-m', 'unittest', 'discover', '-s', join(KIT_DIR, 'tests', 'unit'), '-t', join(KIT_DIR, 'tests')],
          120_000,
        );
        expect(stderr).toMatch(/^OK$/m);
      }, 180_000);
    },
  },
);
