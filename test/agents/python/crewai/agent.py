"""A test agent on CrewAI, traced the way a user traces one: ``openinference-instrumentation-crewai`` with an
OpenTelemetry SDK exporting over OTLP/HTTP protobuf with the agent token. The LLM is a scripted ``BaseLLM``
subclass using CrewAI's native function calling: no network, no weights. CrewAI's own anonymous telemetry and
its hosted tracing are switched off, so nothing but the OTLP export leaves the process.

    python agent.py --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace

The plan is a JSON list of tasks ``{label, taskType, taskId?, calls: [{tool, args}]}``; the LLM calls the
planned tools in order, one per turn, then answers. Mode ``wrapper`` runs each task inside a span of this
script's tracer carrying ``tripline.task.id`` and ``tripline.task.type``; mode ``trace`` declares nothing but the
task type, once, as a resource attribute (every task of the plan must then have the same type), and each task
is its own crew kickoff and its own trace. After each task a JSON line ``{"label", "taskId", "traceId"}`` goes
to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TypedDict

# CrewAI's anonymous usage telemetry (to telemetry.crewai.com) and its hosted tracing: off, before crewai loads.
# (Not OTEL_SDK_DISABLED: that would switch off the user's own OpenTelemetry SDK too.)
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import Agent, BaseLLM, Crew, Task
from crewai.tools import tool
from openinference.instrumentation.crewai import CrewAIInstrumentor
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
@tool("get_order")
def get_order(order_id: str) -> str:
    """Look up an order by its id."""
    return json.dumps({"order_id": order_id, "amount": 42.5, "status": "delivered"})


@tool("issue_refund")
def issue_refund(order_id: str, amount: float) -> str:
    """Refund (part of) an order."""
    return json.dumps({"order_id": order_id, "refunded": amount, "status": "refunded"})


@tool("export_customers")
def export_customers(limit: int = 3) -> str:
    """Export (the first `limit` rows of) the customer list."""
    return json.dumps({"customers": [{"id": f"c-{n}", "email": f"customer{n}@shop.example"} for n in range(1, limit + 1)]})


@tool("http_post")
def http_post(url: str, body: str) -> str:
    """POST a body to a URL."""
    return json.dumps({"url": url, "status": 200, "bytes": len(body)})


TOOLS = [get_order, issue_refund, export_customers, http_post]


class ScriptedLLM(BaseLLM):
    """An LLM that asks for the task's planned tool calls in order (native function calling, OpenAI format), one
    per call, then answers."""

    script: list[dict[str, Any]] = []
    label: str = ""
    prefix: str = "call"
    step: int = 0

    def supports_function_calling(self) -> bool:
        return True

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str | Any:
        step = self.step
        self.step += 1
        if step < len(self.script):
            call = self.script[step]
            return [
                {
                    "id": f"{self.prefix}_{step}",
                    "type": "function",
                    "function": {"name": call["tool"], "arguments": json.dumps(call["args"])},
                }
            ]
        return f"Done: {self.label}."

    def get_context_window_size(self) -> int:
        return 128_000


def run_task(task: PlannedTask, index: int) -> None:
    calls: list[dict[str, Any]] = [dict(call) for call in task.get("calls", [])]
    llm = ScriptedLLM(model="scripted-model", script=calls, label=task["label"], prefix=f"call_{index}")
    agent = Agent(
        role="support-agent",
        goal="Resolve customer-support tickets.",
        backstory="You are a customer-support agent.",
        llm=llm,
        tools=TOOLS,
        allow_delegation=False,
        verbose=False,
    )
    ticket = Task(description=f"Handle ticket #{index}.", expected_output="What was done.", agent=agent)
    Crew(agents=[agent], tasks=[ticket], verbose=False).kickoff()


def main() -> None:
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
    resource: dict[str, Any] = {"service.name": "support-agent-crewai"}
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
    CrewAIInstrumentor().instrument(tracer_provider=provider)
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
                run_task(task, index)
        else:
            before = len(roots.trace_ids)
            run_task(task, index)
            if len(roots.trace_ids) <= before:
                sys.exit(f"task {index} started no trace")
            trace_id = roots.trace_ids[before]
        print(json.dumps({"label": task["label"], "taskId": task_id, "traceId": trace_id}), flush=True)

    provider.force_flush()
    provider.shutdown()


if __name__ == "__main__":
    main()
