"""``Tripline``: the kit for one agent. Spans to Tripline (OTLP/HTTP), the task context on every span, and the
guard that refuses the next tool call of a revoked task.

    tl = tripline.Tripline(endpoint="http://localhost:4318", api_url="http://localhost:8080",
                           token=os.environ["TRIPLINE_AGENT_TOKEN"], agent_id="support-bot-1")
    with tl.task("customer_refund", tools=["get_order", "issue_refund"]) as task:
        agent.run_sync(prompt)          # with an integration, each tool call checks the task first
    tl.shutdown()
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping, Sequence

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Tracer

from ._api import ApiClient
from ._context import TaskSpanProcessor
from ._contract import KIT_VERSION
from ._guard import Guard, WhileDisconnected
from ._telemetry import otlp_exporter, set_up
from .errors import RevocationNotice
from .task import TaskScope

TOKEN_VARIABLE = "TRIPLINE_AGENT_TOKEN"


class Tripline:
    """One agent's connection to Tripline.

    ``endpoint``: OTLP/HTTP base URL (spans go to ``<endpoint>/v1/traces``); None exports nothing of the kit's own
    (the provider already exports). ``api_url``: Tripline's API (the guard's stream, ``/v1/check``, ``/v1/tasks``,
    leases); None turns the guard and credentials off. ``token``: the agent token (default
    ``$TRIPLINE_AGENT_TOKEN``), sent with every export and API request. ``credentials``: ask ``POST /v1/tasks`` for
    a task token at each task's start (the policy decides). ``install``: see ``Tripline.tracer_provider``.
    ``while_disconnected``: what ``enforce``/``acheck`` do while the stream is down (``check`` asks
    ``POST /v1/check``; ``refuse``; ``allow``).
    """

    def __init__(
        self,
        *,
        agent_id: str,
        endpoint: str | None = None,
        api_url: str | None = None,
        token: str | None = None,
        service_name: str | None = None,
        credentials: bool = False,
        install: bool = True,
        while_disconnected: WhileDisconnected = "check",
        agent_name: str | None = None,
        headers: Mapping[str, str] | None = None,
        api_headers: Mapping[str, str] | None = None,
        exporter: SpanExporter | None = None,
        export_delay_ms: int = 200,
        guard: bool = True,
        ready_timeout_s: float = 3.0,
        on_error: Callable[[Exception], None] | None = None,
        on_revocation: Callable[[RevocationNotice], None] | None = None,
    ) -> None:
        if agent_id == "":
            raise ValueError("agent_id must not be empty")
        if credentials and api_url is None:
            raise ValueError("credentials=True needs api_url")
        self.agent_id = agent_id
        self.credentials = credentials
        token = token if token is not None else os.environ.get(TOKEN_VARIABLE)
        if exporter is None and endpoint is not None:
            exporter = otlp_exporter(endpoint, token, headers)
        self._telemetry = set_up(
            agent_id=agent_id,
            agent_name=agent_name,
            service_name=service_name,
            exporter=exporter,
            export_delay_ms=export_delay_ms,
            install=install,
        )
        self.tracer: Tracer = self._telemetry.provider.get_tracer("tripline", KIT_VERSION)
        self._api = None if api_url is None else ApiClient(api_url, token, api_headers)
        self.guard: Guard | None = (
            None
            if self._api is None or not guard
            else Guard(self._api, agent_id, while_disconnected=while_disconnected, on_error=on_error, on_revocation=on_revocation)
        )
        self._ready_timeout_s = ready_timeout_s
        self._ready_waited = False
        self._ready_lock = threading.Lock()

    @property
    def tracer_provider(self) -> TracerProvider:
        """The provider the kit's spans go through: the global one (``install=True``) or the kit's own."""
        return self._telemetry.provider

    @property
    def span_processor(self) -> TaskSpanProcessor:
        """The processor stamping the task on spans (add it to another provider of yours)."""
        return self._telemetry.task_processor

    @property
    def api_client(self) -> ApiClient:
        if self._api is None:
            raise TypeError("this needs api_url (Tripline's API)")
        return self._api

    def task(
        self,
        task_type: str,
        *,
        tools: Sequence[str] | None = None,
        resources: Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
        end_user: str | None = None,
        conversation: str | None = None,
        task_id: str | None = None,
        ttl_seconds: int | None = None,
        parent_id: str | None = None,
        incoming_headers: Mapping[str, str] | None = None,
    ) -> TaskScope:
        """A task of ``task_type``: ``with tl.task(...) as task:`` or ``async with tl.task(...) as task:``.

        ``tools``, ``resources``, ``scopes`` and ``ttl_seconds`` are what the task asks for with credentials;
        ``end_user`` and ``conversation`` are the person and conversation it acts for (on every span, and they
        narrow an escalation to them); ``task_id`` reuses an id (a restored task asking again).

        Task trees: a task started inside another task of this process, or with the ``incoming_headers`` of a request
        whose W3C baggage names a task (a sub-agent's server), is that task's child; ``parent_id`` names the parent
        outright (``""``: none). Send ``task.propagation_headers()`` with a request to another agent.
        """
        return TaskScope(
            self,
            task_type,
            task_id=task_id,
            tools=tools,
            resources=resources,
            scopes=scopes,
            end_user=end_user,
            conversation=conversation,
            ttl_seconds=ttl_seconds,
            parent_id=parent_id,
            incoming_headers=incoming_headers,
        )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        processor = self._telemetry.export_processor
        return True if processor is None else processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flushes the spans, closes the stream. The kit's own provider is shut down; a joined one is left running."""
        if self.guard is not None:
            self.guard.close()
        if self._api is not None:
            self._api.close()
        if self._telemetry.owned:
            self._telemetry.provider.shutdown()
        elif self._telemetry.export_processor is not None:
            self._telemetry.export_processor.shutdown()

    # The first task waits (bounded) for the stream's snapshot, so no revocation in force slips past the guard.
    def _wait_for_guard(self) -> None:
        if self.guard is None or self._ready_waited:
            return
        with self._ready_lock:
            if not self._ready_waited:
                self.guard.ready(self._ready_timeout_s)
                self._ready_waited = True

    async def _await_guard(self) -> None:
        if self.guard is None or self._ready_waited or self.guard.is_ready():
            self._ready_waited = True
            return
        await asyncio.to_thread(self.guard.ready, self._ready_timeout_s)
        self._ready_waited = True
