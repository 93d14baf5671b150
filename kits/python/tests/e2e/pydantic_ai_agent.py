"""A pydantic-ai agent protected by the tripline kit, for the kit's end-to-end tests.

    pydantic_ai_agent.py --endpoint http://127.0.0.1:4318 --api http://127.0.0.1:8080 --token <agent token> \
        --agent <agent id> --plan plan.json

Set up as the kit's README says: ``tripline.Tripline(...)`` (it installs the OpenTelemetry provider that exports to
Tripline), pydantic-ai's own instrumentation, the ``TriplineGuard`` capability, and each run inside
``with tl.task(...)``. The model is scripted (``FunctionModel``: no network, no weights): it calls the planned tools
in order, one per turn; for a task with ``afterRevocation`` it then waits for the revocation, as a model thinking
would, and calls that tool, which the guard must refuse. The tools are plain Python functions that record each run.
Prints one line per task (plan.py).
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plan  # noqa: E402  (the sibling module: the script's folder is on sys.path)
from plan import Call, Outcome, PlannedTask, load_plan, wait_for_revocation  # noqa: E402

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import UsageLimits

import tripline
from tripline.integrations.pydantic_ai import TriplineGuard


class Script:
    """What the scripted model plays for the task running now, and what the tools recorded."""

    def __init__(self) -> None:
        self.task: PlannedTask | None = None
        self.running: tripline.Task | None = None
        self.outcome = Outcome(label="")


def build_agent(script: Script, name: str) -> Agent[None, str]:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        planned = script.task
        assert planned is not None and script.running is not None
        made = sum(1 for message in messages if isinstance(message, ModelResponse) for part in message.parts if isinstance(part, ToolCallPart))
        call: Call | None = planned.calls[made] if made < len(planned.calls) else None
        if call is None and planned.after_revocation is not None and made == len(planned.calls):
            script.outcome.waited_ms = wait_for_revocation(script.running)
            call = planned.after_revocation
        if call is None:
            return ModelResponse(parts=[TextPart(content=f"Done: {made} tool calls.")])
        return ModelResponse(parts=[ToolCallPart(tool_name=call.tool, args=call.args, tool_call_id=f"call_{made + 1}")])

    agent: Agent[None, str] = Agent(
        FunctionModel(model, model_name="scripted-refund-model"),
        name=name,
        instructions="You are a customer-support agent for an online shop. Use the tools to handle refunds.",
        capabilities=[TriplineGuard()],
    )

    def ran(tool: str, **args: Any) -> None:
        script.outcome.ran.append(Call(tool=tool, args=args))

    @agent.tool_plain
    def get_order(order_id: str) -> dict[str, Any]:
        """Look an order up by its id."""
        ran("get_order", order_id=order_id)
        return plan.order(order_id)

    @agent.tool_plain
    def export_customers(limit: int = 50) -> list[dict[str, Any]]:
        """Export the customer list."""
        ran("export_customers", limit=limit)
        return plan.customers(limit)

    @agent.tool_plain
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Refund part or all of an order."""
        ran("issue_refund", order_id=order_id, amount=amount)
        return plan.refund(order_id, amount)

    @agent.tool_plain
    def http_post(url: str, body: str) -> dict[str, Any]:
        """POST a body to a URL (a stub: nothing leaves the machine)."""
        ran("http_post", url=url, body=body)
        return plan.posted(url, body)

    return agent


def main() -> int:
    args = plan.agent_arguments()

    tl = plan.start_tripline(args)
    Agent.instrument_all()
    script = Script()
    agent = build_agent(script, args.agent)
    for planned in load_plan(args.plan):
        script.task, script.outcome = planned, Outcome(label=planned.label)
        try:
            with tl.task(planned.task_type) as task:
                script.running, script.outcome.task_id = task, task.id
                agent.run_sync(f"Handle support request ({planned.label}).", usage_limits=UsageLimits(request_limit=None))
        except tripline.TaskRevokedError as error:
            script.outcome.refused = error
        print(script.outcome.line(), flush=True)
    tl.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
