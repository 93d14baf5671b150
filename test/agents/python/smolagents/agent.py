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

import os
import sys
from typing import Any

from openinference.instrumentation.smolagents import SmolagentsInstrumentor
from smolagents import LogLevel, Model, Tool, ToolCallingAgent, tool
from smolagents.models import ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction, MessageRole

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from plan_run import run_agent  # noqa: E402  (the agents' shared modules)
from shop import SUPPORT_TOOLS, Call, Task  # noqa: E402

AGENT_NAME = "support_agent"


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


if __name__ == "__main__":
    # The user's setup: an OpenTelemetry SDK exporting to Tripline (plan_run.py), and the instrumentor.
    run_agent(
        AGENT_NAME,
        "the agent's name (a Python identifier) and service.name",
        lambda provider: SmolagentsInstrumentor().instrument(tracer_provider=provider),
        run_task,
    )
