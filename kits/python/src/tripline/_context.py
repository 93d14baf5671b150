"""Which task is current: kept in the OpenTelemetry context (a contextvar), so it follows ``asyncio`` tasks and
threads started with ``contextvars.copy_context()``; the span processor that stamps it on every span; and the task
trees it makes: a task started while another is current, or from a request whose W3C baggage names a task, is that
task's child (``tripline.task.parent_id``, a claim Tripline uses only to link the two)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import AttributeValue

from ._contract import TASK_ID, TASK_TYPE

if TYPE_CHECKING:
    from .task import Task

#: The task a task was started inside (schemas/conventions.md, "Task trees").
TASK_PARENT_ID: Final = "tripline.task.parent_id"

_TASK_KEY = otel_context.create_key("tripline.task")
_CALL_KEY = otel_context.create_key("tripline.expected-call")


class ExpectedCall:
    """Attributes for the span a library starts for a call the kit wraps (e.g. the MCP SDK's client span): the
    first span started inside the call whose ``attribute`` equals ``value`` gets them, so the call stays one span."""

    def __init__(self, attribute: str, value: str, attributes: Mapping[str, AttributeValue]) -> None:
        self.attribute = attribute
        self.value = value
        self.attributes = dict(attributes)
        self.claimed = False

    def claim(self, span: Span) -> bool:
        if self.claimed or span.attributes is None or span.attributes.get(self.attribute) != self.value:
            return False
        self.claimed = True
        span.set_attributes(self.attributes)
        return True


def expecting(call: ExpectedCall, context: Context | None = None) -> Context:
    return otel_context.set_value(_CALL_KEY, call, context)


def current_task(context: Context | None = None) -> Task | None:
    """The task the current code runs in (``with tl.task(...)``), or None outside one."""
    task = otel_context.get_value(_TASK_KEY, context)
    from .task import Task

    return task if isinstance(task, Task) else None


def with_task(task: Task, context: Context) -> Context:
    """``context`` with the task current: the task object, and its id, type and parent as baggage (which the W3C
    baggage propagator carries on the requests made inside it)."""
    context = otel_context.set_value(_TASK_KEY, task, context)
    context = baggage.set_baggage(TASK_ID, task.id, context)
    context = baggage.set_baggage(TASK_TYPE, task.type, context)
    if task.parent_id is None:
        return baggage.remove_baggage(TASK_PARENT_ID, context)
    return baggage.set_baggage(TASK_PARENT_ID, task.parent_id, context)


def _baggage_task(context: Context | None) -> str | None:
    value = baggage.get_baggage(TASK_ID, context)
    return value if isinstance(value, str) and value != "" else None


def parent_task_id(task_id: str, incoming_headers: Mapping[str, str] | None = None, context: Context | None = None) -> str | None:
    """The parent of a task about to start: the task in the W3C baggage of ``incoming_headers`` (the request that
    started it), else the kit's task current in ``context``, else a task id in its baggage (a caller's, extracted by
    the server's own instrumentation). Never the task itself."""
    parent: str | None = None
    if incoming_headers is not None:
        lowered = {key.lower(): value for key, value in incoming_headers.items()}
        parent = _baggage_task(W3CBaggagePropagator().extract(lowered, context=Context()))
    if parent is None:
        current = current_task(context)
        parent = current.id if current is not None else _baggage_task(context)
    return None if parent is None or parent == task_id else parent


def propagation_headers(context: Context | None = None) -> dict[str, str]:
    """W3C ``traceparent`` and ``baggage`` for a request made in ``context`` (default: here): inside a task, the
    task's id travels with it, so a task the called agent starts with a Tripline kit becomes this task's child."""
    headers: dict[str, str] = {}
    inject(headers, context=context)
    if "baggage" not in headers:
        W3CBaggagePropagator().inject(headers, context=context)
    return headers


class TaskSpanProcessor(SpanProcessor):
    """Stamps the current task on every span that starts inside it: ``tripline.task.id`` and ``tripline.task.type``,
    the agent (``gen_ai.agent.id``) and, when the task names them, ``enduser.id`` and ``gen_ai.conversation.id``.

    Outside a task of this kit, the task id and type found in baggage (propagated from a caller) are copied instead.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        task = current_task(parent_context)
        if task is not None:
            span.set_attributes(task.span_attributes)
            call = otel_context.get_value(_CALL_KEY, parent_context)
            if isinstance(call, ExpectedCall):
                call.claim(span)
            return
        for key in (TASK_ID, TASK_TYPE, TASK_PARENT_ID):
            value = baggage.get_baggage(key, parent_context)
            if isinstance(value, str) and value != "":
                span.set_attribute(key, value)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

