"""A test agent on Microsoft AutoGen AgentChat, traced the way a user traces one:
``openinference-instrumentation-autogen-agentchat`` with an OpenTelemetry SDK exporting over OTLP/HTTP protobuf with the
agent token. The agent is an ``AssistantAgent`` with ``FunctionTool``s; its model is autogen-ext's own
``OpenAIChatCompletionClient`` whose HTTP client has an in-process transport (``httpx2.MockTransport``, the one the
``openai`` package uses) answering each chat completion from the plan with native tool calls: no network, no weights,
and the model calls are traced as a user's are (OpenInference traces AutoGen's OpenAI client, and no other: autogen-ext's
``ReplayChatCompletionClient`` would leave the model calls unrecorded).

    python agent.py --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace
                    [--agent <name>] [--print-spans] [--global-provider]

Why OpenInference and not AutoGen's own spans: autogen-core 0.7's ``execute_tool`` spans name the tool and the call id
but carry neither its arguments nor its result, and AutoGen records no model call of its own. AutoGen makes those spans
with the global tracer provider, which this script leaves unset unless ``--global-provider`` is given (what most users
do): then each tool call is recorded twice, AutoGen's ``execute_tool`` span inside OpenInference's tool span, and
Tripline counts it once.

The plan is a JSON list of tasks ``{label, taskType, taskId?, calls: [{tool, args}]}``; the model calls the planned
tools in order, one per turn, then answers. The tools are the shop's plain functions (../shop.py) made AutoGen tools
with ``FunctionTool``. Mode ``wrapper`` runs each task inside a span of this script's tracer carrying
``tripline.task.id`` and ``tripline.task.type``; mode ``trace`` declares nothing but the task type, once, as a resource
attribute (every task of the plan must then have the same type), and each task is its own ``agent.run`` and its own
trace. After each task a JSON line ``{"label", "taskId", "traceId"}`` goes to stdout. ``--print-spans`` also writes
every span to stderr (OpenTelemetry's ConsoleSpanExporter).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx2
from autogen_agentchat.agents import AssistantAgent
from autogen_core.tools import FunctionTool
from autogen_ext.models.openai import OpenAIChatCompletionClient
from openinference.instrumentation.autogen_agentchat import AutogenAgentChatInstrumentor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from plan_run import run_agent  # noqa: E402  (the agents' shared modules)
from shop import SUPPORT_TOOLS, Call, Task  # noqa: E402

AGENT_NAME = "support-agent"
MODEL = "gpt-4o-2024-08-06"


def scripted_client(script: list[Call], label: str, prefix: str) -> OpenAIChatCompletionClient:
    """AutoGen's OpenAI client on a transport that asks for the task's planned tool calls in order, one per chat
    completion, then answers."""

    def respond(request: httpx2.Request) -> httpx2.Response:
        made = sum(1 for message in json.loads(request.content)["messages"] if message["role"] == "tool")
        if made < len(script):
            call = script[made]
            function = {"name": call.tool, "arguments": json.dumps(call.args)}
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": f"{prefix}_{made}", "type": "function", "function": function}],
            }
            finish = "tool_calls"
        else:
            message, finish = {"role": "assistant", "content": f"Done: {label}."}, "stop"
        completion = {
            "id": f"chatcmpl-{prefix}-{made}",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
        }
        return httpx2.Response(200, json=completion)

    return OpenAIChatCompletionClient(
        model="gpt-4o",
        api_key="scripted",
        base_url="http://scripted.invalid/v1",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(respond)),
    )


TOOLS = [FunctionTool(function, description=(function.__doc__ or "").split("\n")[0]) for function in SUPPORT_TOOLS]


async def run_task(task: Task, index: int, name: str) -> None:
    agent = AssistantAgent(
        # An AutoGen agent's name must be a Python identifier.
        name=name.replace("-", "_"),
        description="Resolves customer-support tickets.",
        system_message="You are a customer-support agent.",
        model_client=scripted_client(task.calls, task.label, f"call_{index}"),
        tools=TOOLS,
        max_tool_iterations=len(task.calls) + 1,
    )
    # run_stream, consumed to its end (what AutoGen's Console does): ``agent.run`` stops reading the agent's message
    # stream at its answer, so OpenInference's agent span ends only when asyncio finalizes the stream, later.
    async for _ in agent.run_stream(task=f"Handle ticket #{index} ({task.label})."):
        pass


if __name__ == "__main__":
    # The user's setup: an OpenTelemetry SDK exporting to Tripline (plan_run.py), and the instrumentor.
    run_agent(
        AGENT_NAME,
        "the agent's name and service.name",
        lambda provider: AutogenAgentChatInstrumentor().instrument(tracer_provider=provider),
        run_task,
    )
