"""A test agent on Google's Agent Development Kit (ADK), traced the way a user traces one: ADK's own OpenTelemetry
spans (``google.adk.telemetry``, on the global tracer provider) with an OpenTelemetry SDK exporting over OTLP/HTTP
protobuf with the agent token. The agent is an ``LlmAgent`` with ``FunctionTool``s run by an ``InMemoryRunner``; its
model is a scripted subclass of ADK's ``BaseLlm`` that answers with native function calls: no network, no weights,
no API key.

    python agent.py --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace
                    [--agent <name>] [--print-spans]

The plan is a JSON list of tasks ``{label, taskType, taskId?, calls: [{tool, args, withPrevious?}]}``; the model asks
for the planned calls in order, one turn each, except that a call with ``withPrevious`` goes in the same turn as the
call before it (parallel function calls, which ADK runs concurrently and merges into one response event), then
answers. Each model turn reports a token usage (``GenerateContentResponseUsageMetadata``): 200 + 50 * turn prompt
tokens and 25 candidate tokens. The tools are the shop's plain functions (../shop.py) made ADK tools with
``FunctionTool``. Mode ``wrapper`` runs each task inside a span of this script's tracer carrying ``tripline.task.id``
and ``tripline.task.type``; mode ``trace`` declares nothing but the task type, once, as a resource attribute, and
each task is its own run and its own trace. After each task a JSON line ``{"label", "taskId", "traceId"}`` goes to
stdout. ``--print-spans`` also writes every span to stderr. ADK's own switches apply as they do for any user, e.g.
``ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1`` for its legacy span schema.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncGenerator

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import InMemoryRunner
from google.adk.tools import FunctionTool
from google.genai import types
from opentelemetry import trace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from plan_run import run_agent  # noqa: E402  (the agents' shared modules)
from shop import SUPPORT_TOOLS, Call, Task  # noqa: E402

AGENT_NAME = "support_agent"
MODEL_NAME = "scripted-model"
APP_NAME = "support_desk"
USER_ID = "customer-support"


def model_turns(calls: list[Call]) -> list[list[Call]]:
    """The planned calls grouped by the model turn that asks for them."""
    turns: list[list[Call]] = []
    for call in calls:
        if call.with_previous and turns:
            turns[-1].append(call)
        else:
            turns.append([call])
    return turns


def turn_usage(turn: int) -> types.GenerateContentResponseUsageMetadata:
    prompt = 200 + 50 * turn
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt, candidates_token_count=25, total_token_count=prompt + 25
    )


class ScriptedLlm(BaseLlm):
    """A model that asks for a task's planned function calls, one turn per group, then answers.

    The turn is read from the request: each finished turn left one function-response content in the history.
    """

    turns: list[list[Call]]
    label: str
    prefix: str

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        turn = sum(
            1
            for content in llm_request.contents
            if content.parts and any(part.function_response is not None for part in content.parts)
        )
        if turn < len(self.turns):
            parts = [
                types.Part(
                    function_call=types.FunctionCall(id=f"{self.prefix}_{turn}_{slot}", name=call.tool, args=call.args)
                )
                for slot, call in enumerate(self.turns[turn])
            ]
        else:
            parts = [types.Part(text=f"Done: {self.label}.")]
        yield LlmResponse(
            content=types.Content(role="model", parts=parts),
            finish_reason=types.FinishReason.STOP,
            model_version=self.model,
            usage_metadata=turn_usage(turn),
        )


TOOLS = [FunctionTool(function) for function in SUPPORT_TOOLS]


async def run_task(task: Task, index: int, name: str) -> None:
    agent = LlmAgent(
        name=name,
        description="Resolves customer-support tickets.",
        instruction="You are a customer-support agent.",
        model=ScriptedLlm(
            model=MODEL_NAME, turns=model_turns(task.calls), label=task.label, prefix=f"call_{index}"
        ),
        tools=list(TOOLS),
    )
    runner = InMemoryRunner(agent=agent, app_name=APP_NAME)
    session = await runner.session_service.create_session(app_name=APP_NAME, user_id=USER_ID)
    message = types.Content(role="user", parts=[types.Part(text=f"Handle ticket #{index} ({task.label}).")])
    async for _ in runner.run_async(user_id=USER_ID, session_id=session.id, new_message=message):
        pass
    await runner.close()


if __name__ == "__main__":
    # The user's setup: an OpenTelemetry SDK exporting to Tripline (plan_run.py), made the global tracer provider,
    # which ADK's telemetry uses.
    run_agent(
        AGENT_NAME,
        "the agent's name (ADK wants a Python identifier) and service.name",
        trace.set_tracer_provider,
        run_task,
    )
