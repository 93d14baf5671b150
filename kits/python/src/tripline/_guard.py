"""The revocation guard: one server-sent-events connection per agent to Tripline's ``/v1/stream``.

Revocations are pushed; a tool call checks a local set (no request per call). When Tripline revokes one of the
agent's tasks, the next operation of that task raises ``TaskRevokedError`` and the guard acknowledges the
revocation (``POST /v1/revocations/{id}/ack``) so Tripline can verify the kill took effect.

On connect Tripline sends the revocations in force for the agent, then ``ready``. While the stream is down the guard
reconnects with backoff and, until it is back, ``enforce`` asks ``POST /v1/check`` (``while_disconnected="check"``),
refuses (``"refuse"``) or lets calls through (``"allow"``). The stream runs on a daemon thread, so sync and async
agents share it; checks take a lock for microseconds and never wait on I/O.

A loop or rate limit's ``refuse`` step (an ``alert`` event with ``refuseUntilMs``; docs/loops.md) makes the task's
operations raise ``TaskRefusedError`` until then (the task is not revoked); so does a ``POST /v1/check`` answer that
says so.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from ._api import ApiClient
from ._contract import API_PREFIX
from ._escalation import EscalationBlocks, GuardScope
from ._sse import SseEvent, SseParser
from .errors import RevocationNotice, TaskRefusedError, TaskRevokedError, TriplineError

WhileDisconnected = Literal["check", "refuse", "allow"]

#: Most revocations, tracked tasks and acknowledgements remembered (the oldest dropped first).
MAX_REMEMBERED = 100_000
#: A stream silent this long is taken for dead and reconnected (Tripline sends a comment every 15 s by default).
STREAM_READ_TIMEOUT_S = 75.0
MAX_BACKOFF_S = 5.0


def _now_ms() -> float:
    return time.time() * 1000


def notice_of(data: Mapping[str, Any]) -> RevocationNotice | None:
    """A revocation event's data as a notice; None without an id or a task id."""

    def text(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    if text("id") == "" or text("taskId") == "":
        return None
    time_ms = data.get("timeMs")
    if not isinstance(time_ms, (int, float)) or isinstance(time_ms, bool):
        try:
            time_ms = datetime.fromisoformat(text("time").replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            time_ms = _now_ms()
    reasons = data.get("reasons")
    score = data.get("score")
    return RevocationNotice(
        id=text("id"),
        task_id=text("taskId"),
        task_type=text("taskType"),
        agent_id=text("agentId"),
        action="restore" if data.get("action") == "restore" else "revoke",
        source="manual" if data.get("source") == "manual" else "detector",
        actor=text("actor"),
        reason=text("reason"),
        reasons=tuple(reason for reason in reasons if isinstance(reason, str)) if isinstance(reasons, list) else (),
        score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else 0.0,
        time_ms=float(time_ms),
    )


class _Bounded(OrderedDict[str, Any]):
    def remember(self, key: str, value: Any = True) -> None:
        self.pop(key, None)
        self[key] = value
        if len(self) > MAX_REMEMBERED:
            self.popitem(last=False)


class Guard:
    def __init__(
        self,
        api: ApiClient,
        agent_id: str,
        *,
        while_disconnected: WhileDisconnected = "check",
        on_error: Callable[[Exception], None] | None = None,
        on_revocation: Callable[[RevocationNotice], None] | None = None,
    ) -> None:
        if while_disconnected not in ("check", "refuse", "allow"):
            raise ValueError(f"while_disconnected must be 'check', 'refuse' or 'allow', not {while_disconnected!r}")
        self._api = api
        self.agent_id = agent_id
        self.while_disconnected: WhileDisconnected = while_disconnected
        self._on_error = on_error
        self._on_revocation = on_revocation
        self._lock = threading.Lock()
        self._revoked = _Bounded()
        # task id -> (refused until, epoch ms; reason): a loop or rate limit's refuse step (an alert with refuseUntilMs).
        self._refusals = _Bounded()
        self._tracked = _Bounded()
        self._acked = _Bounded()
        self._blocks = EscalationBlocks(agent_id)
        self._connected = False
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._failures = 0
        self._socket: socket.socket | None = None
        self._acks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tripline-ack")
        self._thread = threading.Thread(target=self._run, name=f"tripline-guard-{agent_id}", daemon=True)
        self._thread.start()

    # -- what agents call ------------------------------------------------------------------------------------------

    def ready(self, timeout_s: float = 3.0) -> bool:
        """True once the stream delivered its snapshot (``ready``), False after ``timeout_s``."""
        return self._ready.wait(timeout_s)

    def is_ready(self) -> bool:
        return self._ready.is_set()

    @property
    def connected(self) -> bool:
        return self._connected

    def track(self, task_id: str, scope: GuardScope | None = None) -> None:
        """Marks a task as run by this process: its revocations are acknowledged; scoped escalations reach it."""
        with self._lock:
            self._tracked.remember(task_id)
            self._blocks.track(task_id, scope)
            notice = self._revoked.get(task_id)
        if notice is not None:
            self._acknowledge(notice, _now_ms())

    def revocation(self, task_id: str) -> RevocationNotice | None:
        with self._lock:
            notice: RevocationNotice | None = self._revoked.get(task_id)
            return notice

    def check(self, task_id: str, operation: str) -> None:
        """Raises TaskRevokedError when the task is revoked (or an escalation reaches it), TaskRefusedError while a
        loop or rate limit refuses its calls. No I/O."""
        with self._lock:
            notice: RevocationNotice | None = self._revoked.get(task_id)
            until, reason = self._blocks.block_of(task_id)
            refused: tuple[float, str] | None = self._refusals.get(task_id)
        if notice is not None:
            raise TaskRevokedError(
                task_id=task_id,
                revocation_id=notice.id,
                reason=notice.reason,
                reasons=notice.reasons,
                operation=operation,
                revoked_at_ms=notice.time_ms,
            )
        if until > _now_ms():
            raise TaskRevokedError(task_id=task_id, revocation_id="", reason=reason, operation=operation, revoked_at_ms=_now_ms())
        if refused is not None and refused[0] > _now_ms():
            raise TaskRefusedError(task_id=task_id, reason=refused[1], operation=operation, refused_until_ms=refused[0])

    def enforce(self, task_id: str, operation: str, tool: str) -> None:
        """``check``, plus ``POST /v1/check`` while the stream is down (per ``while_disconnected``)."""
        if self._needs_remote(task_id, operation):
            try:
                refusal = self._api.check(task_id, tool, operation)
            except TriplineError as error:
                self._report(error)
                return
            if refusal is not None:
                raise refusal

    async def aenforce(self, task_id: str, operation: str, tool: str) -> None:
        if self._needs_remote(task_id, operation):
            try:
                refusal = await self._api.acheck(task_id, tool, operation)
            except TriplineError as error:
                self._report(error)
                return
            if refusal is not None:
                raise refusal

    def close(self) -> None:
        self._closed.set()
        sock = self._socket
        if sock is not None:
            # Wakes the stream thread out of its blocking read.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=2.0)
        self._acks.shutdown(wait=True, cancel_futures=False)

    # -- internals -------------------------------------------------------------------------------------------------

    def _needs_remote(self, task_id: str, operation: str) -> bool:
        self.check(task_id, operation)
        if self._connected or self.while_disconnected == "allow":
            return False
        if self.while_disconnected == "refuse":
            raise TaskRevokedError(
                task_id=task_id,
                revocation_id="",
                reason="the revocation stream to Tripline is down and the guard refuses while it is",
                operation=operation,
                revoked_at_ms=_now_ms(),
            )
        return True

    def _report(self, error: Exception) -> None:
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:  # noqa: BLE001  (the agent's own logger must not break the guard)
                pass

    def _acknowledge(self, notice: RevocationNotice, received_at_ms: float) -> None:
        with self._lock:
            if notice.id in self._acked or notice.task_id not in self._tracked:
                return
            self._acked.remember(notice.id)
        try:
            self._acks.submit(self._post_ack, notice, received_at_ms)
        except RuntimeError:  # closed
            pass

    def _post_ack(self, notice: RevocationNotice, received_at_ms: float) -> None:
        try:
            status = self._api.acknowledge(notice.id, self.agent_id, notice.task_id, received_at_ms)
        except httpx.HTTPError as error:
            # Not sent: forgotten, so a later `track` or notice sends it again.
            with self._lock:
                self._acked.pop(notice.id, None)
            self._report(TriplineError(f"acknowledging revocation {notice.id} failed: {error}", code="TRIPLINE_UNAVAILABLE"))
            return
        if status >= 400 and status != 404:
            self._report(TriplineError(f"acknowledging revocation {notice.id} failed: HTTP {status}", code="TRIPLINE_UNAVAILABLE"))

    def _on_event(self, event: SseEvent) -> None:
        if event.event == "ready":
            self._connected = True
            self._failures = 0
            self._ready.set()
            return
        try:
            data = json.loads(event.data)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if event.event == "revocation":
            received_at_ms = _now_ms()
            notice = notice_of(data)
            if notice is None:
                return
            with self._lock:
                if notice.action == "revoke":
                    self._revoked.remember(notice.task_id, notice)
                else:
                    current: RevocationNotice | None = self._revoked.get(notice.task_id)
                    if current is not None and current.time_ms <= notice.time_ms:
                        del self._revoked[notice.task_id]
            if notice.action == "revoke":
                self._acknowledge(notice, received_at_ms)
            if self._on_revocation is not None:
                try:
                    self._on_revocation(notice)
                except Exception as error:  # noqa: BLE001
                    self._report(error)
        elif event.event == "escalation":
            with self._lock:
                self._blocks.apply(data)
        elif event.event == "alert":
            task_id, until = data.get("taskId"), data.get("refuseUntilMs")
            if not isinstance(task_id, str) or not task_id or not isinstance(until, (int, float)) or until <= _now_ms():
                return
            reasons = data.get("reasons")
            reason = reasons[0] if isinstance(reasons, list) and reasons and isinstance(reasons[0], str) else "a loop or rate limit refuses its calls"
            with self._lock:
                self._refusals.remember(task_id, (float(until), reason))

    def _run(self) -> None:
        url = self._api.url(f"{API_PREFIX}/stream?agent_id={quote(self.agent_id, safe='')}&types=revocation,escalation,alert")
        timeout = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT_S)
        with httpx.Client(headers=self._api.headers, timeout=timeout) as client:
            while not self._closed.is_set():
                try:
                    self._stream(client, url)
                    if not self._closed.is_set():
                        raise TriplineError("the revocation stream ended", code="TRIPLINE_UNAVAILABLE")
                except Exception as error:  # noqa: BLE001  (any failure: reconnect)
                    self._connected = False
                    if self._closed.is_set():
                        return
                    self._failures += 1
                    if self._failures == 1 or self._failures % 10 == 0:
                        self._report(error)
                finally:
                    self._socket = None
                self._connected = False
                self._closed.wait(min(MAX_BACKOFF_S, 0.1 * 2 ** min(self._failures, 6)))

    def _stream(self, client: httpx.Client, url: str) -> None:
        with client.stream("GET", url, headers={"accept": "text/event-stream"}) as response:
            if response.status_code != 200:
                raise TriplineError(f"GET {API_PREFIX}/stream answered HTTP {response.status_code}", code="TRIPLINE_UNAVAILABLE")
            stream = response.extensions.get("network_stream")
            self._socket = stream.get_extra_info("socket") if stream is not None else None
            if self._closed.is_set():
                return
            parser = SseParser()
            for chunk in response.iter_raw():
                for event in parser.feed(chunk):
                    self._on_event(event)
