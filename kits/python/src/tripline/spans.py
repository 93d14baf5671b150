"""Spans for work no framework instruments (an MCP client's calls, a plain function): a tool call or a data access
with Tripline's conventions (schemas/conventions.md), as a child of the current span of the task.

They only record; check the task first (``task.check`` / ``await task.acheck``): a refused operation has no span.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ._contract import ERROR_TYPE, EVENT_KIND, GEN_AI_OPERATION, TOOL_CALL_ARGUMENTS, TOOL_CALL_ID, TOOL_CALL_RESULT, TOOL_NAME, TOOL_SIDE_EFFECT, TOOL_TARGET, TOOL_TYPE
from ._context import ExpectedCall, expecting
from .task import Task

SideEffect = Literal["read", "write", "destructive"]
#: Recorded arguments and results are cut at this many characters (Tripline reads at most 16 KiB / 64 KiB).
MAX_CONTENT_CHARS = 16 * 1024


def content(value: Any) -> str:
    """A tool's arguments or result as the JSON text Tripline reads, cut at MAX_CONTENT_CHARS."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text[:MAX_CONTENT_CHARS]


@contextmanager
def _span(task: Task, name: str, attributes: Mapping[str, AttributeValue]) -> Iterator[Span]:
    with task._tripline.tracer.start_as_current_span(name, attributes=dict(attributes), record_exception=True, set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as error:
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.set_attribute(ERROR_TYPE, type(error).__name__)
            raise


@contextmanager
def tool_call_span(
    task: Task,
    tool: str,
    *,
    tool_type: str = "function",
    side_effect: SideEffect | None = None,
    target: str | None = None,
    arguments: Any = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """An ``execute_tool <tool>`` span (GenAI conventions). ``arguments`` (JSON-able) are recorded when given; set
    the result with ``span.set_attribute(TOOL_CALL_RESULT, content(result))`` or ``record_result``."""
    span_attributes: dict[str, AttributeValue] = {
        GEN_AI_OPERATION: "execute_tool",
        TOOL_NAME: tool,
        TOOL_TYPE: tool_type,
        TOOL_CALL_ID: str(uuid.uuid4()),
    }
    if side_effect is not None:
        span_attributes[TOOL_SIDE_EFFECT] = side_effect
    if target is not None:
        span_attributes[TOOL_TARGET] = target
    if arguments is not None:
        span_attributes[TOOL_CALL_ARGUMENTS] = content(arguments)
    span_attributes.update(attributes or {})
    with _span(task, f"execute_tool {tool}", span_attributes) as span:
        yield span


def record_result(span: Span, result: Any) -> None:
    span.set_attribute(TOOL_CALL_RESULT, content(result))


@contextmanager
def data_access_span(task: Task, name: str, attributes: Mapping[str, AttributeValue]) -> Iterator[Span]:
    """A data access span named ``name`` (e.g. ``resources/read <uri>``, ``SELECT orders``) with its attributes
    (``db.*``, ``url.full``, ``mcp.resource.uri``...); ``tripline.event.kind = data_access`` is set."""
    with _span(task, name, {EVENT_KIND: "data_access", **attributes}) as span:
        yield span


class CallRecord:
    """What a wrapped call returned, for the span that records it (set ``result`` inside the block)."""

    result: Any = None


@contextmanager
def library_call_span(
    task: Task,
    *,
    match: tuple[str, str],
    name: str,
    attributes: Mapping[str, AttributeValue],
    result_attribute: str | None = TOOL_CALL_RESULT,
) -> Iterator[CallRecord]:
    """One span for a call made through a library that may start its own span for it.

    The first span started inside the block whose attribute ``match[0]`` equals ``match[1]`` (the library's own,
    e.g. the MCP SDK's ``MCP send tools/call <tool>`` client span) gets ``attributes``: the call stays one span, as
    the library traced it. When no such span starts (the library does not trace, or traces to another provider),
    a span ``name`` with ``attributes`` (and the result) is recorded over the call's time instead.
    """
    call = ExpectedCall(match[0], match[1], attributes)
    record = CallRecord()
    started = time.time_ns()
    token = otel_context.attach(expecting(call))
    failure: BaseException | None = None
    try:
        yield record
    except BaseException as error:
        failure = error
        raise
    finally:
        otel_context.detach(token)
        if not call.claimed:
            span = task._tripline.tracer.start_span(name, start_time=started, attributes=dict(attributes))
            if failure is not None:
                span.set_status(Status(StatusCode.ERROR, str(failure)))
                span.set_attribute(ERROR_TYPE, type(failure).__name__)
            elif record.result is not None and result_attribute is not None:
                span.set_attribute(result_attribute, content(record.result))
            span.end()
