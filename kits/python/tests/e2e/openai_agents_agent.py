"""An OpenAI Agents SDK agent protected by the tripline kit, for the kit's end-to-end tests
(test/e2e/python-kit-frameworks.test.ts).

    openai_agents_agent.py --endpoint http://127.0.0.1:4318 --api http://127.0.0.1:8080 --token <agent token> \
        --agent <agent id> --plan plan.json

Set up as the kit's README says: ``tripline.Tripline(...)`` (it installs the OpenTelemetry provider that exports to
Tripline), OpenInference's bridge from the SDK's tracing to that provider (the tool spans Tripline scores), the
agent wrapped in ``protect(...)`` (Tripline's tool input guardrail on every function tool), and each run inside
``async with tl.task(...)``. The model is the SDK's ``ScriptedModel`` (no network, no weights; nothing reaches
OpenAI, the bridge replaces the SDK's exporter): it calls the planned tools in order, one per turn; for a task with
``afterRevocation`` it then waits for the revocation, as a model thinking would, and calls that tool, which the
guardrail must refuse. The tools are plain Python functions that record each run. Prints one line per task (plan.py).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from agents import Agent, Runner, Tool, function_tool
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
import plan  # noqa: E402  (the sibling module: the script's folder is on sys.path)
from plan import Call, Outcome, PlannedTask, load_plan, wait_for_revocation  # the sibling module (the script's folder is on sys.path)

import tripline
from tripline.integrations.openai_agents import protect

#: The outcome of the task running now: the tools record their runs in it.
CURRENT = Outcome(label="")


def ran(tool: str, **args: Any) -> None:
    CURRENT.ran.append(Call(tool=tool, args=args))


@function_tool
def get_order(order_id: str) -> dict[str, Any]:
    """Look an order up by its id."""
    ran("get_order", order_id=order_id)
    return plan.order(order_id)


@function_tool
def export_customers(limit: int = 50) -> list[dict[str, Any]]:
    """Export the customer list."""
    ran("export_customers", limit=limit)
    return plan.customers(limit)


@function_tool
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    """Refund part or all of an order."""
    ran("issue_refund", order_id=order_id, amount=amount)
    return plan.refund(order_id, amount)


@function_tool
def http_post(url: str, body: str) -> dict[str, Any]:
    """POST a body to a URL (a stub: nothing leaves the machine)."""
    ran("http_post", url=url, body=body)
    return plan.posted(url, body)


TOOLS: list[Tool] = [get_order, export_customers, issue_refund, http_post]


def scripted_model(planned: PlannedTask, running: tripline.Task, outcome: Outcome) -> ScriptedModel:
    """The task's calls, one per turn; then, once the task is revoked, its last call; then an answer."""
    steps: list[Any] = [[function_call(call.tool, call.args, call_id=f"call_{step + 1}")] for step, call in enumerate(planned.calls)]
    last = planned.after_revocation
    if last is not None:

        async def after_revocation(_call: ModelCall) -> Any:
            outcome.waited_ms = await asyncio.to_thread(wait_for_revocation, running)
            return [function_call(last.tool, last.args, call_id=f"call_{len(planned.calls) + 1}")]

        steps.append(ModelStep.respond(after_revocation))
    steps.append([assistant_message(f"Done: {planned.label}.")])
    return ScriptedModel(steps, emit_traces=True)


async def main() -> int:
    global CURRENT
    args = plan.agent_arguments()

    tl = plan.start_tripline(args)
    OpenAIAgentsInstrumentor().instrument(tracer_provider=tl.tracer_provider)
    for planned in load_plan(args.plan):
        CURRENT = Outcome(label=planned.label)
        try:
            async with tl.task(planned.task_type) as task:
                CURRENT.task_id = task.id
                agent = protect(Agent(name=args.agent, instructions="You are a customer-support agent for an online shop.", model=scripted_model(planned, task, CURRENT), tools=TOOLS))
                await Runner.run(agent, f"Handle support request ({planned.label}).")
        except tripline.TaskRevokedError as error:
            CURRENT.refused = error
        print(CURRENT.line(), flush=True)
    tl.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
