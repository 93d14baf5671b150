"""Where the kit's spans go: the SDK TracerProvider it creates or joins, and its processors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from ._context import TaskSpanProcessor
from ._contract import AGENT_ID, AGENT_NAME, SERVICE_NAME, USER_AGENT


@dataclass
class Telemetry:
    provider: TracerProvider
    #: The provider is the kit's own (created here), so shutting the kit down shuts it down.
    owned: bool
    task_processor: TaskSpanProcessor
    export_processor: SpanProcessor | None


def otlp_exporter(endpoint: str, token: str | None, headers: Mapping[str, str] | None) -> OTLPSpanExporter:
    all_headers = {"user-agent": USER_AGENT, **(headers or {})}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    return OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces", headers=all_headers)


def set_up(
    *,
    agent_id: str,
    agent_name: str | None,
    service_name: str | None,
    exporter: SpanExporter | None,
    export_delay_ms: int,
    install: bool,
) -> Telemetry:
    """``install``: no SDK provider registered yet → create one and register it globally; one is registered →
    add the kit's processors to it. Not ``install``: a provider of the kit's own, not registered (pass
    ``Tripline.tracer_provider`` to the framework)."""
    task_processor = TaskSpanProcessor()
    export_processor = None if exporter is None else BatchSpanProcessor(exporter, schedule_delay_millis=export_delay_ms, max_queue_size=8192)
    existing = trace.get_tracer_provider()
    if install and isinstance(existing, TracerProvider):
        provider, owned = existing, False
    else:
        resource = Resource.create({SERVICE_NAME: service_name or agent_id, AGENT_ID: agent_id, AGENT_NAME: agent_name or agent_id})
        provider, owned = TracerProvider(resource=resource), True
    # The task processor first: every later processor (and the exporter) sees the task attributes.
    provider.add_span_processor(task_processor)
    if export_processor is not None:
        provider.add_span_processor(export_processor)
    if install and owned:
        trace.set_tracer_provider(provider)
    return Telemetry(provider=provider, owned=owned, task_processor=task_processor, export_processor=export_processor)
