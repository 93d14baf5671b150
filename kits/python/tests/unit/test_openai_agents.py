"""The OpenAI Agents SDK tool guardrail against a local stand-in of Tripline's API, with the SDK's ``ScriptedModel``:
once the task is revoked, its next tool call raises ``TaskRevokedError`` out of ``Runner.run`` without the tool
running; ``protect`` reaches every function tool, MCP server and handoff once; tasks that are not revoked, and runs
outside any task, are untouched."""

from __future__ import annotations

import asyncio
import sys
import unittest
from typing import Any

from agents import Agent, FunctionTool, Runner, ToolGuardrailFunctionOutput, ToolInputGuardrail, function_tool, set_tracing_disabled
from agents.exceptions import AgentsException
from agents.mcp import MCPServerStdio
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tripline
from tripline.integrations.openai_agents import GUARDRAIL_NAME, for_runner, protect, tool_guardrail, tripline_guardrail

from .fake_tripline import FakeTripline, revocation, wait_until


def setUpModule() -> None:
    # The SDK's own tracing would export to OpenAI (and warn that there is no key): not wanted in unit tests.
    set_tracing_disabled(True)


def tearDownModule() -> None:
    set_tracing_disabled(False)


def shop(ran: list[str]) -> FunctionTool:
    @function_tool
    def get_order(order_id: str) -> str:
        """Look an order up."""
        ran.append(order_id)
        return f"order {order_id}: delivered"

    return get_order


def model(orders: list[str], revoke_before: int | None = None, fake: FakeTripline | None = None) -> ScriptedModel:
    """Calls `get_order` for each order, one per turn, then answers; before turn `revoke_before` has the stand-in
    revoke the current task and waits until the guard knows."""

    def call(turn: int) -> list[Any]:
        return [function_call("get_order", {"order_id": orders[turn]}, call_id=f"call_{turn}")]

    async def revoke_then_call(_call: ModelCall) -> Any:
        task = tripline.current_task()
        assert task is not None and fake is not None and revoke_before is not None
        fake.push("revocation", revocation(task.id))
        if not await asyncio.to_thread(wait_until, lambda: task.revoked):
            raise AssertionError("the guard never heard of the revocation")
        return call(revoke_before)

    steps: list[Any] = [ModelStep.respond(revoke_then_call) if turn == revoke_before else call(turn) for turn in range(len(orders))]
    steps.append([assistant_message("done")])
    return ScriptedModel(steps)


class GuardrailTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeTripline()
        self.tl = tripline.Tripline(agent_id="unit-agent", api_url=self.fake.url, install=False, exporter=InMemorySpanExporter())
        self.ran: list[str] = []

    def tearDown(self) -> None:
        self.tl.shutdown()
        self.fake.stop()

    def run_agent(self, agent: Agent[Any]) -> Any:
        async def run() -> Any:
            async with self.tl.task("customer_refund"):
                return await Runner.run(agent, "refund")

        return asyncio.run(run())

    def test_refuses_the_next_tool_call_of_a_revoked_task(self) -> None:
        agent = protect(Agent(name="support", model=model(["ord-1", "ord-2", "ord-3"], 1, self.fake), tools=[shop(self.ran)]))
        with self.assertRaises(tripline.TaskRevokedError) as raised:
            self.run_agent(agent)
        self.assertEqual(self.ran, ["ord-1"], "the refused tool call did not run")
        error = raised.exception
        self.assertEqual((error.code, error.operation, error.revocation_id), ("TASK_REVOKED", "execute_tool get_order", "a" * 32))
        self.assertIn("was revoked by Tripline", str(error))
        self.assertTrue(wait_until(lambda: len(self.fake.acks) == 1), "the guard acknowledged the revocation")

    def test_run_sync_too(self) -> None:
        agent = protect(Agent(name="support", model=model(["ord-1", "ord-2"], 1, self.fake), tools=[shop(self.ran)]))
        with self.assertRaises(tripline.TaskRevokedError), self.tl.task("customer_refund"):
            Runner.run_sync(agent, "refund")
        self.assertEqual(self.ran, ["ord-1"])

    def test_tasks_not_revoked_and_runs_outside_a_task_are_untouched(self) -> None:
        get_order = shop(self.ran)
        result = self.run_agent(protect(Agent(name="support", model=model(["ord-1", "ord-2"]), tools=[get_order])))
        self.assertEqual(result.final_output, "done")
        asyncio.run(Runner.run(protect(Agent(name="support", model=model(["ord-3"]), tools=[get_order])), "refund"))
        self.assertEqual(self.ran, ["ord-1", "ord-2", "ord-3"])
        self.assertEqual(self.fake.checks, [], "no request per call while the stream is up")

    def test_a_guardrail_bound_to_a_task_guards_it_outside_its_context(self) -> None:
        with self.tl.task("customer_refund") as task:
            bound = tool_guardrail(task)
        self.fake.push("revocation", revocation(task.id))
        self.assertTrue(wait_until(lambda: task.revoked))
        agent = protect(Agent(name="support", model=model(["ord-1"]), tools=[shop(self.ran)]), bound)
        with self.assertRaises(tripline.TaskRevokedError) as raised:
            asyncio.run(Runner.run(agent, "refund"))
        self.assertEqual(raised.exception.task_id, task.id)
        self.assertEqual(self.ran, [])


class ProtectTest(unittest.TestCase):
    def test_every_function_tool_mcp_server_and_handoff_once(self) -> None:
        ran: list[str] = []
        # Never started: `protect` only sets the guardrails the SDK copies onto each tool the server lists.
        shared, server = shop(ran), MCPServerStdio(params={"command": sys.executable, "args": ["-c", "pass"]}, name="shop")
        billing = Agent(name="billing", tools=[shared])
        support = Agent(name="support", tools=[shared, shop(ran)], mcp_servers=[server], handoffs=[billing])
        billing.handoffs = [support]  # a cycle
        self.assertIs(protect(support), support)
        protect(billing)
        for agent in (support, billing):
            for tool in agent.tools:
                assert isinstance(tool, FunctionTool)
                self.assertEqual([guardrail.get_name() for guardrail in tool.tool_input_guardrails or []], [GUARDRAIL_NAME])
        self.assertEqual(server.tool_input_guardrails, [tripline_guardrail])

    def test_tripline_goes_first(self) -> None:
        ran: list[str] = []

        pii: ToolInputGuardrail[Any] = ToolInputGuardrail(guardrail_function=lambda data: ToolGuardrailFunctionOutput.allow(), name="pii")

        @function_tool(tool_input_guardrails=[pii])
        def lookup(order_id: str) -> str:
            """Look an order up."""
            ran.append(order_id)
            return order_id

        protect(Agent(name="support", tools=[lookup]))
        self.assertEqual([guardrail.get_name() for guardrail in lookup.tool_input_guardrails or []], [GUARDRAIL_NAME, "pii"])


class ForRunnerTest(unittest.TestCase):
    def test_the_copy_is_both_and_keeps_everything(self) -> None:
        original = tripline.TaskRevokedError(task_id="t-1", revocation_id="r" * 32, reason="novel tool", reasons=["a", "b"], operation="execute_tool x", revoked_at_ms=5.0)
        copy = for_runner(original)
        self.assertIsInstance(copy, tripline.TaskRevokedError)
        self.assertIsInstance(copy, AgentsException)
        self.assertEqual(type(copy).__name__, "TaskRevokedError")
        self.assertEqual(str(copy), str(original))
        self.assertEqual((copy.task_id, copy.revocation_id, copy.reasons, copy.operation, copy.code), ("t-1", "r" * 32, ("a", "b"), "execute_tool x", "TASK_REVOKED"))
        self.assertIs(type(for_runner(original)), type(copy), "one subclass per error class")
        self.assertIs(for_runner(copy), copy)
        denied = for_runner(tripline.TaskDeniedError("no", code="AGENT_BLOCKED", task_type="customer_refund"))
        self.assertIsInstance(denied, tripline.TaskDeniedError)
        self.assertEqual(denied.code, "AGENT_BLOCKED")


if __name__ == "__main__":
    unittest.main()
