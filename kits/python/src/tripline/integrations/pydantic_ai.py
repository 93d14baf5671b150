"""pydantic-ai: a capability that checks the current Tripline task before each tool call.

    from tripline.integrations.pydantic_ai import TriplineGuard

    agent = Agent(model, tools=[...], capabilities=[TriplineGuard()])
    with tl.task("customer_refund") as task:
        agent.run_sync(prompt)       # raises TaskRevokedError at the next tool call once Tripline revokes the task

The check wraps each tool's execution from outside pydantic-ai's own instrumentation, so a refused call runs no
tool and leaves no ``execute_tool`` span (Tripline would count one as the agent acting after the kill). The error is
not a tool failure the model could retry: it propagates out of ``agent.run`` / ``run_sync`` / ``iter``. The task is
``tripline.current_task()`` where the run starts, or the ``task`` given (for a run outside the task's context).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability, CapabilityOrdering, Instrumentation, WrapToolExecuteHandler
from pydantic_ai.capabilities.abstract import ValidatedToolArgs
from pydantic_ai.messages import ToolCallPart
from pydantic_ai.tools import AgentDepsT, ToolDefinition

from .._context import current_task
from ..task import Task


@dataclass
class TriplineGuard(AbstractCapability[AgentDepsT]):
    """Refuses the next tool call of a revoked task with ``TaskRevokedError`` (the tool does not run)."""

    task: Task | None = None
    """The task to check; None: the current task (``tripline.current_task()``) at each call."""

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None

    def get_ordering(self) -> CapabilityOrdering:
        # Outside the Instrumentation capability: the check runs before its tool span starts.
        return CapabilityOrdering(position="outermost", wraps=[Instrumentation])

    async def wrap_tool_execute(
        self,
        ctx: RunContext[AgentDepsT],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: ValidatedToolArgs,
        handler: WrapToolExecuteHandler,
    ) -> Any:
        task = self.task if self.task is not None else current_task()
        if task is not None:
            await task.acheck(f"execute_tool {call.tool_name}", call.tool_name)
        return await handler(args)
