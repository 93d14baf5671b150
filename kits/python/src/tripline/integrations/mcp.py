"""MCP (the official ``mcp`` package): a client session whose ``call_tool`` and ``read_resource`` check the task first.

    from tripline.integrations.mcp import guard_mcp_session

    async with ClientSession(read, write) as session:
        mcp = guard_mcp_session(session)                   # the current task at each call (or task=...)
        await mcp.call_tool("get_order", {"order_id": 42})  # TaskRevokedError, before the request leaves, once revoked

Each ``tools/call`` is a tool-call event of the task (``mcp.method.name = tools/call``, ``gen_ai.tool.name``,
``gen_ai.operation.name = execute_tool``, the arguments as ``gen_ai.tool.call.arguments``) and each
``resources/read`` a data access (``mcp.resource.uri``). The MCP SDK traces its requests itself (an
``MCP send tools/call <tool>`` client span): the kit adds these attributes to that span, so a call is one span; where
the SDK traces nothing (or to another provider), the kit records its own span, with the result. Other methods pass
through unchanged. With ``forward_token=True`` the task's token travels in the request's
``_meta["dev.tripline/task-token"]``, so an MCP server or gateway can introspect it or ask Tripline's request-time
check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

from mcp import ClientSession
from mcp.types import CallToolResult, ReadResourceResult, RequestParamsMeta
from opentelemetry.util.types import AttributeValue

from .._context import current_task
from .._contract import GEN_AI_OPERATION, MCP_METHOD, MCP_RESOURCE_URI, MCP_TOOL_NAME, TOOL_CALL_ARGUMENTS, TOOL_NAME, TOOL_SIDE_EFFECT, TOOL_TARGET, TOOL_TYPE
from ..spans import content, library_call_span
from ..task import Task

TOKEN_META_KEY = "dev.tripline/task-token"

SideEffect = Literal["read", "write", "destructive"]


class GuardedClientSession:
    """An ``mcp.ClientSession`` whose tool calls and resource reads are guarded and traced; the rest is the session."""

    def __init__(
        self,
        session: ClientSession,
        task: Task | None = None,
        *,
        side_effect_of: Callable[[str], SideEffect | None] | None = None,
        target: str | None = None,
        forward_token: bool = False,
        record_arguments: bool = True,
    ) -> None:
        self.session = session
        self._task = task
        self._side_effect_of = side_effect_of
        self._target = target
        self._forward_token = forward_token
        self._record_arguments = record_arguments

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    def _current(self) -> Task | None:
        return self._task if self._task is not None else current_task()

    def _meta(self, task: Task, meta: RequestParamsMeta | None) -> RequestParamsMeta | None:
        if not self._forward_token or task.token is None:
            return meta
        return cast(RequestParamsMeta, {**(meta or {}), TOKEN_META_KEY: task.token})

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None, *args: Any, meta: RequestParamsMeta | None = None, **kwargs: Any) -> CallToolResult:
        task = self._current()
        if task is None:
            result: CallToolResult = await self.session.call_tool(name, arguments, *args, meta=meta, **kwargs)
            return result
        await task.acheck(f"execute_tool {name}", name)
        attributes: dict[str, AttributeValue] = {
            GEN_AI_OPERATION: "execute_tool",
            TOOL_NAME: name,
            TOOL_TYPE: "mcp",
            MCP_METHOD: "tools/call",
            MCP_TOOL_NAME: name,
        }
        side_effect = self._side_effect_of(name) if self._side_effect_of is not None else None
        if side_effect is not None:
            attributes[TOOL_SIDE_EFFECT] = side_effect
        if self._target is not None:
            attributes[TOOL_TARGET] = self._target
        if self._record_arguments:
            attributes[TOOL_CALL_ARGUMENTS] = content(arguments or {})
        with library_call_span(task, match=(MCP_METHOD, "tools/call"), name=f"execute_tool {name}", attributes=attributes) as record:
            result = await self.session.call_tool(name, arguments, *args, meta=self._meta(task, meta), **kwargs)
            if self._record_arguments:
                record.result = result.model_dump(mode="json", exclude_none=True)
        return result

    async def read_resource(self, uri: Any, *args: Any, meta: RequestParamsMeta | None = None, **kwargs: Any) -> ReadResourceResult:
        task = self._current()
        if task is None:
            result: ReadResourceResult = await self.session.read_resource(uri, *args, meta=meta, **kwargs)
            return result
        await task.acheck(f"resources/read {uri}", "resources/read")
        attributes: dict[str, AttributeValue] = {MCP_METHOD: "resources/read", MCP_RESOURCE_URI: str(uri)}
        with library_call_span(task, match=(MCP_METHOD, "resources/read"), name=f"resources/read {uri}", attributes=attributes, result_attribute=None):
            result = await self.session.read_resource(uri, *args, meta=self._meta(task, meta), **kwargs)
        return result


def guard_mcp_session(
    session: ClientSession,
    task: Task | None = None,
    *,
    side_effect_of: Callable[[str], SideEffect | None] | None = None,
    target: str | None = None,
    forward_token: bool = False,
    record_arguments: bool = True,
) -> GuardedClientSession:
    """Wraps ``session``: ``call_tool`` and ``read_resource`` check ``task`` (default: the current task) first.

    ``side_effect_of`` gives each tool's side effect (e.g. from its annotations: readOnlyHint → ``read``,
    destructiveHint → ``destructive``); ``target`` names the MCP server as the tools' target; ``record_arguments``
    records the arguments (and, on the kit's own span, the result) for Tripline's detectors.
    """
    return GuardedClientSession(
        session,
        task,
        side_effect_of=side_effect_of,
        target=target,
        forward_token=forward_token,
        record_arguments=record_arguments,
    )
