"""LangChain and LangGraph: a callback handler that refuses the next tool call of a revoked task.

    from tripline.integrations.langgraph import TriplineCallbackHandler

    with tl.task("customer_refund"):
        graph.invoke(inputs, config={"callbacks": [TriplineCallbackHandler()]})

Callbacks given in a run's config reach every runnable of the run, so the handler sees each tool before it runs,
whether the graph calls it through a ``ToolNode``, ``create_react_agent`` or ``tool.invoke`` of its own. Once
Tripline revokes the task, the next tool start (or retriever start: a data access) raises ``TaskRevokedError``
before the tool's code runs, and the error leaves ``graph.invoke`` / ``graph.ainvoke``. The task is the one
current where the run was invoked (``tripline.current_task()``), or the one given to the handler.

A ``ToolNode(..., handle_tool_errors=True)`` turns any tool error into a message to the model, the refusal
included; the handler therefore also refuses the revoked task's next model call (``refuse_model_calls``), which
ends the run there.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage

from tripline import Task, current_task

__all__ = ["TriplineCallbackHandler"]


class TriplineCallbackHandler(BaseCallbackHandler):
    """Refuses the tool calls, retrievals and model calls of a task Tripline has revoked.

    ``task``: the task to guard; by default the one current when each callback fires (the task the run was
    invoked in). Outside any task the handler lets everything through.
    """

    # LangChain logs and swallows a callback's exception unless the handler asks for it to be raised.
    raise_error: bool = True

    def __init__(self, task: Task | None = None, *, refuse_model_calls: bool = True) -> None:
        super().__init__()
        self._task = task
        self._refuse_model_calls = refuse_model_calls

    def _guarded(self) -> Task | None:
        return self._task if self._task is not None else current_task()

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        task = self._guarded()
        if task is not None:
            # Asks Tripline (POST /v1/check) only while the guard's stream is down, per `while_disconnected`.
            tool = _name_of(serialized, kwargs, "tool")
            task.enforce(f"execute_tool {tool}", tool)

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        task = self._guarded()
        if task is not None:
            retriever = _name_of(serialized, kwargs, "retriever")
            task.enforce(f"retrieval {retriever}", retriever)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._check_model_call(serialized, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._check_model_call(serialized, kwargs)

    def _check_model_call(self, serialized: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        if not self._refuse_model_calls:
            return
        task = self._guarded()
        if task is not None:
            # The local state only: a model call does not act on the world, so it is not worth a request.
            task.check(f"chat {_name_of(serialized, kwargs, 'model')}")


def _name_of(serialized: dict[str, Any] | None, kwargs: dict[str, Any], fallback: str) -> str:
    """The runnable's name: LangChain passes it as `name` (newer) or in the serialized form (older)."""
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if serialized:
        named = serialized.get("name")
        if isinstance(named, str) and named:
            return named
    return fallback
