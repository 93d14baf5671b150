"""A test agent on LlamaIndex, traced the way a user traces one: ``openinference-instrumentation-llama-index`` with an
OpenTelemetry SDK exporting over OTLP/HTTP protobuf with the agent token. The agent is a ``FunctionAgent`` with
``FunctionTool``s; its LLM is llama-index-core's own ``MockFunctionCallingLLM`` with a scripted response generator
that returns native tool calls: no network, no weights.

    python agent.py --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace
                    [--agent <name>] [--print-spans]

The plan is a JSON list of tasks ``{label, taskType, taskId?, calls: [{tool, args}]}``; the LLM calls the planned
tools in order, one per turn, then answers. The tools are the shop's plain functions (../shop.py) made LlamaIndex
tools with ``FunctionTool.from_defaults``. Mode ``wrapper`` runs each task inside a span of this script's tracer
carrying ``tripline.task.id`` and ``tripline.task.type``; mode ``trace`` declares nothing but the task type, once, as a
resource attribute (every task of the plan must then have the same type), and each task is its own ``agent.run``
and its own trace. After each task a JSON line ``{"label", "taskId", "traceId"}`` goes to stdout. ``--print-spans``
also writes every span to stderr (OpenTelemetry's ConsoleSpanExporter).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from shop import SUPPORT_TOOLS, Call, RootTraceRecorder, Task, load_plan  # noqa: E402  (the agents' shared module)

AGENT_NAME = "support-agent"
TASK_TYPE_ATTRIBUTE = "tripline.task.type"


def scripted_llm(script: list[Call], label: str, prefix: str) -> MockFunctionCallingLLM:
    """An LLM that asks for the task's planned tool calls in order, one per turn, then answers."""

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        made = sum(1 for message in messages if message.role == MessageRole.TOOL)
        if made < len(script):
            call = script[made]
            block = ToolCallBlock(tool_call_id=f"{prefix}_{made}", tool_name=call.tool, tool_kwargs=call.args)
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[block])
        return ChatMessage(role=MessageRole.ASSISTANT, content=f"Done: {label}.")

    return MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)


TOOLS = [FunctionTool.from_defaults(fn=function) for function in SUPPORT_TOOLS]


async def run_task(task: Task, index: int, name: str) -> None:
    agent = FunctionAgent(
        name=name,
        description="Resolves customer-support tickets.",
        system_prompt="You are a customer-support agent.",
        tools=TOOLS,
        llm=scripted_llm(task.calls, task.label, f"call_{index}"),
        allow_parallel_tool_calls=False,
    )
    await agent.run(user_msg=f"Handle ticket #{index} ({task.label}).", max_iterations=len(task.calls) + 5)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--mode", choices=["wrapper", "trace"], default="wrapper")
    parser.add_argument("--agent", default=AGENT_NAME, help="the agent's name and service.name")
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
    LlamaIndexInstrumentor().instrument(tracer_provider=provider)
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
                await run_task(task, index, args.agent)
        else:
            roots.trace_id = None
            await run_task(task, index, args.agent)
            if roots.trace_id is None:
                sys.exit(f"task {index} started no trace")
            trace_id = roots.trace_id
        print(json.dumps({"label": task.label, "taskId": task_id, "traceId": f"{trace_id:032x}"}), flush=True)

    provider.force_flush()
    provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
