"""A task: what the agent does for one piece of work, with its id, type, optional token and guard.

``Tripline.task(...)`` returns a ``TaskScope``; entering it (``with`` or ``async with``) starts the task: with
credentials a token from ``POST /v1/tasks`` first (a denial raises ``TaskDeniedError`` and nothing runs), then one
span for the task (the root of a new trace, ``tripline.task.root = true``) that is current, with the task in the
OpenTelemetry context and baggage, until the block ends. A task started while another is current, or from a request
whose W3C baggage names a task (``incoming_headers``), is that task's child (``tripline.task.parent_id``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ._api import SecretLease, TaskRequest
from ._approvals import CallAllowed, CallCheck, OnPending, acheck_call, check_call
from ._context import TASK_PARENT_ID, current_task, parent_task_id, propagation_headers, with_task
from ._contract import AGENT_ID, CONVERSATION, END_USER, ERROR_TYPE, OPERATION_REFUSED_EVENT, TASK_ID, TASK_ROOT, TASK_TYPE
from ._escalation import GuardScope
from .errors import TaskRefusedError, TaskRevokedError

if TYPE_CHECKING:
    from .client import Tripline


class Task:
    """A running task. ``check`` / ``acheck`` / ``enforce`` before an operation; ``lease`` a secret for it."""

    def __init__(
        self,
        tripline: Tripline,
        *,
        task_id: str,
        task_type: str,
        token: str | None,
        end_user: str | None,
        conversation: str | None,
        parent_id: str | None = None,
    ) -> None:
        self._tripline = tripline
        self.id = task_id
        #: The task this one was started inside (``tripline.task.parent_id`` on its spans), or None.
        self.parent_id = parent_id
        self.type = task_type
        #: The task's bearer token (with ``credentials=True``), for the tools and services the task calls.
        self.token = token
        self.agent_id = tripline.agent_id
        self.end_user = end_user
        self.conversation = conversation
        self.span: Span | None = None
        attributes: dict[str, AttributeValue] = {TASK_ID: task_id, TASK_TYPE: task_type, AGENT_ID: tripline.agent_id}
        if end_user is not None:
            attributes[END_USER] = end_user
        if conversation is not None:
            attributes[CONVERSATION] = conversation
        if parent_id is not None:
            attributes[TASK_PARENT_ID] = parent_id
        #: What every span started inside the task carries (set by the kit's span processor).
        self.span_attributes: dict[str, AttributeValue] = attributes

    @property
    def revoked(self) -> bool:
        """True once Tripline revoked the task (its next checked operation raises TaskRevokedError)."""
        guard = self._tripline.guard
        return guard is not None and guard.revocation(self.id) is not None

    def check(self, operation: str) -> None:
        """Raises TaskRevokedError if the task is revoked (or an escalation reaches it). Never does I/O."""
        guard = self._tripline.guard
        if guard is not None:
            self._refused(lambda: guard.check(self.id, operation))

    def enforce(self, operation: str, tool: str | None = None) -> None:
        """``check``, plus ``POST /v1/check`` while the revocation stream is down (``while_disconnected``)."""
        guard = self._tripline.guard
        if guard is not None:
            self._refused(lambda: guard.enforce(self.id, operation, tool or operation))

    async def acheck(self, operation: str, tool: str | None = None) -> None:
        """The async ``enforce``: ``check``, plus ``POST /v1/check`` while the stream is down."""
        guard = self._tripline.guard
        if guard is None:
            return
        try:
            await guard.aenforce(self.id, operation, tool or operation)
        except (TaskRevokedError, TaskRefusedError) as error:
            self._record_refusal(error)
            raise

    def check_call(
        self,
        tool: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        resource: str | None = None,
        side_effect: Literal["read", "write", "destructive"] | None = None,
        on_pending: OnPending = "wait",
        timeout_s: float = 300.0,
        poll_interval_s: float = 1.0,
    ) -> CallAllowed:
        """Asks Tripline whether this task may make a call now (``POST /v1/check`` with its arguments).

        Returns when it may; raises ``CallDeniedError``, ``TaskRevokedError`` or an ``ApprovalError`` when it may not.
        At an approval point (docs/approvals.md) it waits for a person, bounded by ``timeout_s`` (polling with the
        task token: needs ``credentials=True``), or raises ``ApprovalPendingError`` at once (``on_pending="fail"``).
        """
        self.enforce(f"call {tool}", tool)
        check = CallCheck(tool, arguments, resource, side_effect, on_pending, timeout_s, poll_interval_s)
        return check_call(self._tripline.api_client, self.id, self.token, check)

    async def acheck_call(
        self,
        tool: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        resource: str | None = None,
        side_effect: Literal["read", "write", "destructive"] | None = None,
        on_pending: OnPending = "wait",
        timeout_s: float = 300.0,
        poll_interval_s: float = 1.0,
    ) -> CallAllowed:
        """The async ``check_call``."""
        await self.acheck(f"call {tool}", tool)
        check = CallCheck(tool, arguments, resource, side_effect, on_pending, timeout_s, poll_interval_s)
        return await acheck_call(self._tripline.api_client, self.id, self.token, check)

    def propagation_headers(self) -> dict[str, str]:
        """W3C ``traceparent`` and ``baggage`` headers for a request this task makes to another agent (merge them into
        the request's headers): a task that agent starts with a Tripline kit becomes this task's child. Call it
        inside the task's block (the current span is the request's parent)."""
        if current_task() is self:
            return propagation_headers()
        return propagation_headers(with_task(self, trace.set_span_in_context(self.span) if self.span is not None else Context()))

    def lease(self, secret: str, ttl_seconds: int | None = None) -> SecretLease:
        """Leases a named secret for this task's lifetime (needs ``credentials=True``: the task token)."""
        token = self._lease_token(secret)
        return self._tripline.api_client.lease(token, secret, ttl_seconds, task_id=self.id, task_type=self.type, revocation_id=self._revocation_id())

    async def alease(self, secret: str, ttl_seconds: int | None = None) -> SecretLease:
        token = self._lease_token(secret)
        return await self._tripline.api_client.alease(token, secret, ttl_seconds, task_id=self.id, task_type=self.type, revocation_id=self._revocation_id())

    def _lease_token(self, secret: str) -> str:
        if self.token is None:
            raise TypeError("lease() needs api_url and credentials=True (the task token)")
        self.check(f"lease {secret}")
        return self.token

    def _revocation_id(self) -> str:
        guard = self._tripline.guard
        notice = guard.revocation(self.id) if guard is not None else None
        return notice.id if notice is not None else ""

    def _refused(self, check: Callable[[], None]) -> None:
        try:
            check()
        except (TaskRevokedError, TaskRefusedError) as error:
            self._record_refusal(error)
            raise

    def _record_refusal(self, error: TaskRevokedError | TaskRefusedError) -> None:
        # The refused operation never ran: no span for it, an event on the task span instead.
        if self.span is not None and self.span.is_recording():
            revocation_id = error.revocation_id if isinstance(error, TaskRevokedError) else ""
            self.span.add_event(
                OPERATION_REFUSED_EVENT,
                {"tripline.operation": error.operation, "tripline.revocation.id": revocation_id, "tripline.revocation.reason": error.reason},
            )

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, type={self.type!r}, agent_id={self.agent_id!r})"


class TaskScope:
    """``with tl.task(...) as task`` / ``async with tl.task(...) as task``: starts the task, ends it after the block."""

    def __init__(
        self,
        tripline: Tripline,
        task_type: str,
        *,
        task_id: str | None,
        tools: Sequence[str] | None,
        resources: Sequence[str] | None,
        scopes: Sequence[str] | None,
        end_user: str | None,
        conversation: str | None,
        ttl_seconds: int | None,
        parent_id: str | None = None,
        incoming_headers: Mapping[str, str] | None = None,
    ) -> None:
        if task_type == "":
            raise ValueError("a task needs a type")
        self._tripline = tripline
        self._request = TaskRequest(
            agent_id=tripline.agent_id,
            task_type=task_type,
            task_id=task_id,
            tools=tools,
            resources=resources,
            scopes=scopes,
            ttl_seconds=ttl_seconds,
            end_user=end_user,
            conversation=conversation,
        )
        self._parent_id = parent_id
        self._incoming_headers = incoming_headers
        self._task: Task | None = None
        self._token: object | None = None

    def __enter__(self) -> Task:
        self._tripline._wait_for_guard()
        task_id, token = self._request.task_id or str(uuid.uuid4()), None
        if self._tripline.credentials:
            started = self._tripline.api_client.start_task(self._request)
            task_id, token = started.task_id, started.token
        return self._open(task_id, token)

    async def __aenter__(self) -> Task:
        await self._tripline._await_guard()
        task_id, token = self._request.task_id or str(uuid.uuid4()), None
        if self._tripline.credentials:
            started = await self._tripline.api_client.astart_task(self._request)
            task_id, token = started.task_id, started.token
        return self._open(task_id, token)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self._close(error)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self._close(error)

    def _open(self, task_id: str, token: str | None) -> Task:
        if self._task is not None:
            raise RuntimeError("a task scope can be entered once")
        request = self._request
        # Given (``""``: none), else from the request that started it or the task current here.
        parent = self._parent_id if self._parent_id is not None else parent_task_id(task_id, self._incoming_headers)
        task = Task(
            self._tripline,
            task_id=task_id,
            task_type=request.task_type,
            token=token,
            end_user=request.end_user,
            conversation=request.conversation,
            parent_id=None if parent in (None, "", task_id) else parent,
        )
        guard = self._tripline.guard
        if guard is not None:
            guard.track(task_id, GuardScope(request.end_user, request.conversation))
        # A new trace of its own (an empty parent context): one task, one trace, the root marked as the task.
        task.span = self._tripline.tracer.start_span(
            f"task {request.task_type}",
            context=Context(),
            attributes={**task.span_attributes, TASK_ROOT: True},
        )
        context = with_task(task, trace.set_span_in_context(task.span))
        self._token = otel_context.attach(context)
        self._task = task
        return task

    def _close(self, error: BaseException | None) -> None:
        task, token = self._task, self._token
        if task is None or task.span is None:
            return
        try:
            if error is None:
                task.span.set_status(Status(StatusCode.OK))
            else:
                task.span.set_status(Status(StatusCode.ERROR, str(error)))
                task.span.set_attribute(ERROR_TYPE, type(error).__name__)
            task.span.end()
        finally:
            if token is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
            self._token = None
