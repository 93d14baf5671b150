"""A test agent on the OpenAI Agents SDK, traced the way a user traces one: the SDK's own tracing (not
OpenTelemetry) bridged to OpenTelemetry by ``openinference-instrumentation-openai-agents``, exported over
OTLP/HTTP protobuf with the agent token. The model is the SDK's scripted test model (``agents.testing.
ScriptedModel``): no network, no weights, and nothing reaches OpenAI (the instrumentor replaces the SDK's
exporter to the OpenAI backend with its own processor).

    python agent.py --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace

The plan is a JSON list of tasks ``{label, taskType, taskId?, calls: [{tool, args}]}``; the model calls the
planned tools in order, one per turn, then answers. Mode ``wrapper`` runs each task inside a span of this
script's tracer carrying ``tripline.task.id`` and ``tripline.task.type``; mode ``trace`` declares nothing but the
task type, once, as a resource attribute (every task of the plan must then have the same type), and each task
is its own trace. After each task a JSON line ``{"label", "taskId", "traceId"}`` goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TypedDict

from agents import Agent, RunConfig, Runner, Tool, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import format_trace_id


class PlannedCall(TypedDict):
    tool: str
    args: dict[str, Any]


class PlannedTask(TypedDict, total=False):
    label: str
    taskType: str
    taskId: str | None
    calls: list[PlannedCall]


class RootSpans(SpanProcessor):
    """Not part of a user's setup: remembers each trace's root span, so the script can print the trace id."""

    def __init__(self) -> None:
        self.trace_ids: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.parent is None:
            self.trace_ids.append(format_trace_id(span.context.trace_id))

    def on_end(self, span: ReadableSpan) -> None:
        pass


# ---- The tools (no real network).
@function_tool
def get_order(order_id: str) -> dict[str, Any]:
    """Look up an order by its id."""
    return {"order_id": order_id, "amount": 42.5, "status": "delivered"}


@function_tool
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    """Refund (part of) an order."""
    return {"order_id": order_id, "refunded": amount, "status": "refunded"}


@function_tool
def export_customers(limit: int = 3) -> dict[str, Any]:
    """Export (the first `limit` rows of) the customer list."""
    return {"customers": [{"id": f"c-{n}", "email": f"customer{n}@shop.example"} for n in range(1, limit + 1)]}


@function_tool
def http_post(url: str, body: str) -> dict[str, Any]:
    """POST a body to a URL."""
    return {"url": url, "status": 200, "bytes": len(body)}


TOOLS: list[Tool] = [get_order, issue_refund, export_customers, http_post]


def scripted_model(task: PlannedTask, index: int) -> ScriptedModel:
    """A model that calls the task's planned tools in order, one per turn, then answers."""
    steps: list[Any] = [
        [function_call(call["tool"], call["args"], call_id=f"call_{index}_{step}")] for step, call in enumerate(task.get("calls", []))
    ]
    steps.append([assistant_message(f"Done: {task['label']}.")])
    return ScriptedModel(steps, emit_traces=True)


async def run_task(task: PlannedTask, index: int) -> None:
    agent = Agent(
        name="support-agent",
        instructions="You are a customer-support agent.",
        model=scripted_model(task, index),
        tools=TOOLS,
    )
    await Runner.run(agent, f"Handle ticket #{index}.", run_config=RunConfig(workflow_name="support ticket"))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--mode", choices=["wrapper", "trace"], default="wrapper")
    args = parser.parse_args()
    with open(args.plan, encoding="utf-8") as plan_file:
        plan: list[PlannedTask] = json.load(plan_file)
    process_task_type = plan[0]["taskType"] if plan else None
    if args.mode == "trace" and any(task["taskType"] != process_task_type for task in plan):
        sys.exit("mode trace: the task type is one per process, so every task of the plan needs the same taskType")

    roots = RootSpans()
    # ---- The user's setup: an OpenTelemetry SDK exporting to Tripline, and the instrumentor.
    resource: dict[str, Any] = {"service.name": "support-agent-openai-agents"}
    if args.mode == "trace" and process_task_type is not None:
        resource["tripline.task.type"] = process_task_type
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(roots)
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(
                endpoint=f"{args.endpoint.rstrip('/')}/v1/traces",
                headers={"authorization": f"Bearer {args.token}"},
            )
        )
    )
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    # ----

    tracer = provider.get_tracer("support-agent")
    for index, task in enumerate(plan):
        task_id: str | None = None
        if args.mode == "wrapper":
            # The user's own span around the run, the only place the task id is declared.
            task_id = task.get("taskId") or f"task-{index}"
            with tracer.start_as_current_span(
                f"support ticket {index}",
                attributes={"tripline.task.id": task_id, "tripline.task.type": task["taskType"]},
            ) as span:
                trace_id = format_trace_id(span.get_span_context().trace_id)
                await run_task(task, index)
        else:
            before = len(roots.trace_ids)
            await run_task(task, index)
            if len(roots.trace_ids) <= before:
                sys.exit(f"task {index} started no trace")
            trace_id = roots.trace_ids[before]
        print(json.dumps({"label": task["label"], "taskId": task_id, "traceId": trace_id}), flush=True)

    provider.force_flush()
    provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
