"""A test agent on Hugging Face smolagents, traced the way a user traces one: ``openinference-instrumentation-smolagents``
with an OpenTelemetry SDK exporting over OTLP/HTTP protobuf with the agent token. The agent is a ``ToolCallingAgent``;
its model is a scripted subclass of smolagents' ``Model`` that returns native tool calls: no network, no weights.

    python agent.py --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace
                    [--agent <name>] [--print-spans]

The plan is a JSON list of tasks ``{label, taskType, taskId?, calls: [{tool, args}]}``; the model calls the planned
tools in order, one per step, then ``final_answer`` (smolagents' built-in tool that ends every run). The tools are
the shop's plain functions (../shop.py) made smolagents tools with ``@tool``. Mode ``wrapper`` runs each task inside
a span of this script's tracer carrying ``tripline.task.id`` and ``tripline.task.type``; mode ``trace`` declares
nothing but the task type, once, as a resource attribute (every task of the plan must then have the same type), and
each task is its own ``agent.run`` and its own trace. After each task a JSON line ``{"label", "taskId", "traceId"}``
goes to stdout. ``--print-spans`` also writes every span to stderr (OpenTelemetry's ConsoleSpanExporter).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from openinference.instrumentation.smolagents import SmolagentsInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from smolagents import LogLevel, Model, Tool, ToolCallingAgent, tool
from smolagents.models import ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction, MessageRole

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from shop import SUPPORT_TOOLS, Call, RootTraceRecorder, Task, load_plan  # noqa: E402  (the agents' shared module)

AGENT_NAME = "support_agent"
TASK_TYPE_ATTRIBUTE = "tripline.task.type"


class ScriptedModel(Model):
    """A model that asks for the task's planned tool calls in order, one per step, then for ``final_answer``."""

    def __init__(self, script: list[Call], label: str, prefix: str) -> None:
        super().__init__(model_id="scripted-model")
        self.script = script
        self.label = label
        self.prefix = prefix
        self.step = 0

    def generate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Tool] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        step = self.step
        self.step += 1
        if step < len(self.script):
            name, arguments = self.script[step].tool, self.script[step].args
        else:
            name, arguments = "final_answer", {"answer": f"Done: {self.label}."}
        call = ChatMessageToolCall(
            id=f"{self.prefix}_{step}",
            type="function",
            function=ChatMessageToolCallFunction(name=name, arguments=arguments),
        )
        return ChatMessage(role=MessageRole.ASSISTANT, content=None, tool_calls=[call])


TOOLS: list[Tool] = [tool(function) for function in SUPPORT_TOOLS]


def run_task(task: Task, index: int, name: str) -> None:
    agent = ToolCallingAgent(
        tools=TOOLS,
        model=ScriptedModel(task.calls, task.label, f"call_{index}"),
        name=name,
        max_steps=len(task.calls) + 2,
        verbosity_level=LogLevel.OFF,
    )
    agent.run(f"Handle ticket #{index} ({task.label}).")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--mode", choices=["wrapper", "trace"], default="wrapper")
    parser.add_argument("--agent", default=AGENT_NAME, help="the agent's name (a Python identifier) and service.name")
    parser.add_argument("--print-spans", action="store_true", help="also write every span to stderr")
    args = parser.parse_args()
    plan = load_plan(args.plan)
    types = {task.task_type for task in plan}
    if args.mode == "trace" and len(types) > 1:
        sys.exit("mode trace: the task type is one per process, so every task of the plan needs the same taskType")

    roots = RootTraceRecorder()
    # ---- The user's setup: an OpenTelemetry SDK exporting to Tripline, and the instrumentor.
    resource: dict[str, Any] = {"service.name": args.agent}
    if args.mode == "trace" and types:
        resource[TASK_TYPE_ATTRIBUTE] = next(iter(types))
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(roots)
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(
                endpoint=f"{args.endpoint.rstrip('/')}/v1/traces",
                headers={"authorization": f"Bearer {args.token}"},
            ),
            schedule_delay_millis=200,
        )
    )
    if args.print_spans:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    SmolagentsInstrumentor().instrument(tracer_provider=provider)
    # ----

    tracer = provider.get_tracer("support-agent")
    for index, task in enumerate(plan):
        task_id: str | None = None
        if args.mode == "wrapper":
            # The user's own span around the run, the only place the task id is declared.
            task_id = task.task_id or f"task-{index}"
            with tracer.start_as_current_span(
                f"support ticket {index}",
                attributes={"tripline.task.id": task_id, TASK_TYPE_ATTRIBUTE: task.task_type},
            ) as span:
                trace_id = span.get_span_context().trace_id
                run_task(task, index, args.agent)
        else:
            roots.trace_id = None
            run_task(task, index, args.agent)
            if roots.trace_id is None:
                sys.exit(f"task {index} started no trace")
            trace_id = roots.trace_id
        print(json.dumps({"label": task.label, "taskId": task_id, "traceId": f"{trace_id:032x}"}), flush=True)

    provider.force_flush()
    provider.shutdown()


if __name__ == "__main__":
    main()
