"""OpenAI Agents SDK: a tool input guardrail that refuses the next tool call of a revoked task.

    from tripline.integrations.openai_agents import protect

    agent = protect(Agent(name="support", tools=[get_order, issue_refund]))
    async with tl.task("customer_refund"):
        await Runner.run(agent, prompt)          # or Runner.run_sync inside `with tl.task(...)`

``protect`` adds Tripline's guardrail to every function tool of the agent, to its MCP servers' tools and to the
agents it hands off to; or list ``tripline_guardrail`` yourself (``@function_tool(tool_input_guardrails=[...])``).
The SDK runs a tool's input guardrails before the tool. Once Tripline revokes the task, the next tool call raises
``TaskRevokedError`` before the tool's code runs, and ``Runner.run`` raises it to its caller. The task is the one
current where ``Runner.run`` was called (``tripline.current_task()``); outside any task tools run unguarded.

Hosted tools (web search, file search, code interpreter) run on OpenAI's side and have no input guardrails.
"""

from __future__ import annotations

from typing import Any, TypeVar

from agents import Agent, FunctionTool, ToolGuardrailFunctionOutput, ToolInputGuardrail, ToolInputGuardrailData
from agents.exceptions import AgentsException

from tripline import Task, TriplineError, current_task

__all__ = ["GUARDRAIL_NAME", "for_runner", "protect", "tool_guardrail", "tripline_guardrail"]

GUARDRAIL_NAME = "tripline"

E = TypeVar("E", bound=TriplineError)


def tool_guardrail(task: Task | None = None) -> ToolInputGuardrail[Any]:
    """A tool input guardrail for ``task``, or (by default) for the task current when the tool is called."""

    async def tripline(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        guarded = task if task is not None else current_task()
        if guarded is None:
            return ToolGuardrailFunctionOutput.allow()
        tool = data.context.tool_name
        try:
            # Asks Tripline (POST /v1/check) only while the guard's stream is down, per `while_disconnected`.
            await guarded.acheck(f"execute_tool {tool}", tool)
        except TriplineError as error:
            raise for_runner(error) from None
        return ToolGuardrailFunctionOutput.allow()

    return ToolInputGuardrail(guardrail_function=tripline, name=GUARDRAIL_NAME)


tripline_guardrail: ToolInputGuardrail[Any] = tool_guardrail()
"""The guardrail for the current task, to list in ``tool_input_guardrails``."""


def protect(agent: Agent[Any], guardrail: ToolInputGuardrail[Any] = tripline_guardrail) -> Agent[Any]:
    """Adds ``guardrail`` to the agent's function tools and MCP servers, and to those of the agents it hands
    off to (``Agent`` instances in ``handoffs``); returns ``agent``. A tool or server that already has a
    Tripline guardrail is left as it is, so protecting agents that share tools is safe. An agent used as a tool
    (``other.as_tool(...)``) is guarded as one tool; ``protect(other)`` too to guard the tools it calls."""
    seen: set[int] = set()
    pending: list[Agent[Any]] = [agent]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for tool in current.tools:
            if isinstance(tool, FunctionTool):
                tool.tool_input_guardrails = _with(tool.tool_input_guardrails, guardrail)
        for server in current.mcp_servers:
            # The SDK copies a server's guardrails onto each tool it lists from it.
            if hasattr(server, "tool_input_guardrails"):
                server.tool_input_guardrails = _with(server.tool_input_guardrails, guardrail)
        pending.extend(handoff for handoff in current.handoffs if isinstance(handoff, Agent))
    return agent


def _with(guardrails: list[ToolInputGuardrail[Any]] | None, guardrail: ToolInputGuardrail[Any]) -> list[ToolInputGuardrail[Any]]:
    existing = list(guardrails or [])
    if any(item is guardrail or item.get_name() == GUARDRAIL_NAME for item in existing):
        return existing
    # First: a refused call should not run the other guardrails (which may call a model) either.
    return [guardrail, *existing]


_RUNNER_FLAVOURS: dict[type[TriplineError], type[TriplineError]] = {}


def for_runner(error: E) -> E:
    """``error`` as an instance of a subclass of both its class and the SDK's ``AgentsException``.

    The SDK wraps any other exception raised while running a tool (its guardrails included) in a ``UserError``;
    an ``AgentsException`` leaves ``Runner.run`` as it is. The copy is still a ``TaskRevokedError`` (same
    attributes, same message), so ``except tripline.TaskRevokedError`` around ``Runner.run`` catches it.
    """
    if isinstance(error, AgentsException):
        return error
    cls = type(error)
    flavour = _RUNNER_FLAVOURS.get(cls)
    if flavour is None:
        flavour = type(cls.__name__, (cls, AgentsException), {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})
        _RUNNER_FLAVOURS[cls] = flavour
    copy = BaseException.__new__(flavour, *error.args)
    copy.__dict__.update(error.__dict__)
    copy.run_data = None  # type: ignore[attr-defined]  # AgentsException's own attribute
    return copy  # type: ignore[return-value]
