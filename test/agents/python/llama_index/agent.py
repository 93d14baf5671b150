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

import os
import sys
from collections.abc import Sequence
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from plan_run import run_agent  # noqa: E402  (the agents' shared modules)
from shop import SUPPORT_TOOLS, Call, Task  # noqa: E402

AGENT_NAME = "support-agent"


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


if __name__ == "__main__":
    # The user's setup: an OpenTelemetry SDK exporting to Tripline (plan_run.py), and the instrumentor.
    run_agent(
        AGENT_NAME,
        "the agent's name and service.name",
        lambda provider: LlamaIndexInstrumentor().instrument(tracer_provider=provider),
        run_task,
    )
