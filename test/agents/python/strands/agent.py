"""A test agent on Strands Agents (AWS), traced the way the Strands documentation sets it up: Strands' own
OpenTelemetry tracing, ``StrandsTelemetry().setup_otlp_exporter(...)`` exporting over OTLP/HTTP protobuf with the
agent token (the service name and, in mode ``trace``, the task type given through the standard ``OTEL_SERVICE_NAME``
and ``OTEL_RESOURCE_ATTRIBUTES``). The agent is a ``strands.Agent`` whose model is a scripted subclass of Strands'
``Model`` that streams the planned tool uses: no network, no weights, no API keys.

    python agent.py --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace
                    [--agent <name>] [--print-spans]

The plan is a JSON list of tasks ``{label, taskType, taskId?, calls: [{tool, args}]}``; the model asks for the
planned tools in order, one per turn, then answers with text. The tools are the shop's plain functions (../shop.py)
and the payables' ``read_invoice`` (the suppliers' invoices of test/agents/invoices.json, one carrying an injected
instruction) and ``pay_invoice`` (a stub), made Strands tools with ``@tool``. Mode ``wrapper`` runs each task inside a span of this script's tracer carrying
``tripline.task.id`` and ``tripline.task.type``; mode ``trace`` declares nothing but the task type, once, as a
resource attribute (every task of the plan must then have the same type), and each task is its own agent
invocation and its own trace. After each task a JSON line ``{"label", "taskId", "traceId"}`` goes to stdout.
``--print-spans`` also writes every span to stderr (Strands' console exporter).

Strands records a tool call's input and result as span events by default (``gen_ai.tool.message``,
``gen_ai.choice``), and as the ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result`` attributes plus
structured message events when ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` is set: the test runs
both, through the environment, as a user would.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any, TypeVar

from pydantic import BaseModel

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from plan_run import TASK_TYPE_ATTRIBUTE, read_run, task_run  # noqa: E402  (the agents' shared modules)
from shop import SUPPORT_TOOLS, Call, RootTraceRecorder, Task, invoice_view, load_invoices  # noqa: E402

AGENT_NAME = "support_agent"
T = TypeVar("T", bound=BaseModel)
INVOICES = load_invoices()


def read_invoice(invoice_id: str) -> dict[str, Any]:
    """Read a supplier's invoice: who sent it, the account to pay and the amount due.

    Args:
        invoice_id: The invoice's id.
    """
    return invoice_view(INVOICES, invoice_id)


def pay_invoice(invoice_id: str, iban: str, amount: float) -> dict[str, Any]:
    """Pay an invoice to an account (a stub: no money moves).

    Args:
        invoice_id: The invoice's id.
        iban: The account to pay.
        amount: How much to pay.
    """
    return {"invoice_id": invoice_id, "paid": amount, "status": "paid"}


def configure_environment(agent: str, mode: str, plan: list[Task]) -> None:
    """The user's deployment settings, read by the OpenTelemetry SDK when Strands builds its resource."""
    os.environ["OTEL_SERVICE_NAME"] = agent
    if mode == "trace" and plan:
        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"{TASK_TYPE_ATTRIBUTE}={plan[0].task_type}"


# Strands is imported after the environment is set (its telemetry reads it).
def main() -> None:
    args, plan = read_run(AGENT_NAME, "the agent's name and service.name")
    configure_environment(args.agent, args.mode, plan)

    from strands import Agent, tool
    from strands.models import Model
    from strands.telemetry import StrandsTelemetry
    from strands.types.content import Messages
    from strands.types.streaming import StreamEvent
    from strands.types.tools import ToolSpec

    class ScriptedModel(Model):
        """A model that streams the task's planned tool uses in order, one per turn, then a text answer."""

        def __init__(self, script: list[Call], label: str, prefix: str) -> None:
            super().__init__()
            self.script = script
            self.label = label
            self.prefix = prefix
            self.turn = 0
            self.config: dict[str, Any] = {"model_id": "scripted-model"}

        def update_config(self, **model_config: Any) -> None:
            self.config.update(model_config)

        def get_config(self) -> Any:
            return self.config

        def structured_output(
            self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
        ) -> AsyncGenerator[dict[str, T | Any], None]:
            raise NotImplementedError("the scripted model answers with tool uses and text only")

        async def stream(
            self,
            messages: Messages,
            tool_specs: list[ToolSpec] | None = None,
            system_prompt: str | None = None,
            **kwargs: Any,
        ) -> AsyncIterable[StreamEvent]:
            turn = self.turn
            self.turn += 1
            yield {"messageStart": {"role": "assistant"}}
            if turn < len(self.script):
                call = self.script[turn]
                yield {
                    "contentBlockStart": {"start": {"toolUse": {"name": call.tool, "toolUseId": f"{self.prefix}_{turn}"}}}
                }
                yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(call.args)}}}}
                yield {"contentBlockStop": {}}
                yield {"messageStop": {"stopReason": "tool_use"}}
            else:
                yield {"contentBlockStart": {"start": {}}}
                yield {"contentBlockDelta": {"delta": {"text": f"Done: {self.label}."}}}
                yield {"contentBlockStop": {}}
                yield {"messageStop": {"stopReason": "end_turn"}}
            yield {
                "metadata": {
                    "usage": {"inputTokens": 100 + 20 * turn, "outputTokens": 12, "totalTokens": 112 + 20 * turn},
                    "metrics": {"latencyMs": 1},
                }
            }

    # The user's setup: Strands' telemetry (its global tracer provider) exporting to Tripline with the agent token.
    telemetry = StrandsTelemetry()
    roots = RootTraceRecorder()
    telemetry.tracer_provider.add_span_processor(roots)
    telemetry.setup_otlp_exporter(
        endpoint=f"{args.endpoint.rstrip('/')}/v1/traces",
        headers={"authorization": f"Bearer {args.token}"},
    )
    if args.print_spans:
        telemetry.setup_console_exporter(out=sys.stderr)
    tracer = telemetry.tracer_provider.get_tracer("support-agent")
    tools = [tool(function) for function in [*SUPPORT_TOOLS, read_invoice, pay_invoice]]

    for index, task in enumerate(plan):
        with task_run(tracer, args.mode, task, index, roots):
            agent = Agent(
                model=ScriptedModel(task.calls, task.label, f"call_{index}"),
                tools=tools,
                name=args.agent,
                # Strands prints the streamed answer to stdout by default; stdout carries the task lines here.
                callback_handler=None,
            )
            agent(f"Handle ticket #{index} ({task.label}).")
    telemetry.tracer_provider.force_flush()
    telemetry.tracer_provider.shutdown()


if __name__ == "__main__":
    main()
