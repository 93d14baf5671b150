/**
 * The Python agent kit (`kits/python`, the `tripline` wheel installed with pip the way a user installs it; see
 * test/helpers/python-kit.ts) against Tripline started as `npm start` does, for two more integrations:
 *
 * - langgraph: a LangGraph `StateGraph` (scripted chat model, a `ToolNode`, OpenInference's LangChain
 *   instrumentation) run with the kit's `TriplineCallbackHandler` in its callbacks
 *   (kits/python/tests/e2e/langgraph_agent.py);
 * - openai_agents: an OpenAI Agents SDK agent (the SDK's `ScriptedModel`, OpenInference's bridge from the SDK's
 *   tracing) wrapped in the kit's `protect`, Tripline's tool input guardrail (kits/python/tests/e2e/openai_agents_agent.py).
 *
 * For each, with an agent and a task type of its own: benign warm-up tasks until the type has its baseline, then a
 * mixed run: benign tasks, and one that exfiltrates (exports the customers, then `http_post` to a host the type never
 * saw, a tool it never used), waits for Tripline to revoke it and makes one more call (a refund). Expected: the
 * detector revokes that task; its next call raises `TaskRevokedError` out of `graph.invoke` / `Runner.run` and the
 * tool function never runs; the guard acknowledged the revocation and Tripline verified the agent stopped; every
 * benign task ran all its calls, completed and was not revoked.
 */
import { describeKitIntegrations } from '../helpers/python-kit-e2e.ts';

describeKitIntegrations(
  'the Python kit (tripline wheel) with LangGraph and the OpenAI Agents SDK, against Tripline',
  [{ name: 'langgraph' }, { name: 'openai_agents' }],
  { seed: 61 },
);
