"""The Python agent of test/bench/kill-latency-python.bench.ts: kills tasks one after another and reports, per kill,
when the offending span was handed to the exporter (t0) and when the guard held the revocation (tc).

    bench_agent.py --endpoint <otlp> --api <api> --token <agent token> --kills N

Each kill is one task with a task token (``credentials=True``, as the TypeScript bench): a benign tool call, then an
unapproved administrative privilege change (a hard rule: revoked on its first event); once the guard holds the
revocation the next tool call must raise TaskRevokedError (checked for every kill). Times are epoch milliseconds of
this process's wall clock. Prints one JSON line per kill: ``{"taskId", "t0", "tc"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import tripline
from tripline.spans import tool_call_span

OFFENDING = "privilege elevate"


def now_ms() -> float:
    return time.time() * 1000


class MarkingExporter(SpanExporter):
    """The OTLP exporter, noting when the offending span of the armed task is handed to it."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.armed: str | None = None
        self.handed = threading.Event()
        self.t0 = 0.0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        armed = self.armed
        if armed is not None and any(span.name == OFFENDING and (span.attributes or {}).get("tripline.task.id") == armed for span in spans):
            self.t0 = now_ms()
            self.armed = None
            self.handed.set()
        return self.inner.export(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--kills", type=int, required=True)
    args = parser.parse_args()

    from tripline._telemetry import otlp_exporter

    exporter = MarkingExporter(otlp_exporter(args.endpoint, args.token, None))
    held: dict[str, float] = {}
    revoked = threading.Condition()

    def on_revocation(notice: tripline.RevocationNotice) -> None:
        with revoked:
            held.setdefault(notice.task_id, now_ms())
            revoked.notify_all()

    tl = tripline.Tripline(
        endpoint=None,
        api_url=args.api,
        token=args.token,
        agent_id="bench-refund-agent-python",
        credentials=True,
        exporter=exporter,
        export_delay_ms=1,
        on_revocation=on_revocation,
        on_error=lambda error: print(f"tripline: {error}", file=sys.stderr),
    )
    for _ in range(args.kills):
        try:
            with tl.task("customer_refund", tools=["get_order"], scopes=["payments:read"]) as task:
                with tool_call_span(task, "get_order", side_effect="read"):
                    pass
                exporter.handed.clear()
                exporter.armed = task.id
                with tl.tracer.start_as_current_span(
                    OFFENDING,
                    attributes={
                        "tripline.privilege.action": "elevate",
                        "tripline.privilege.scopes_before": ["payments:read"],
                        "tripline.privilege.scopes_after": ["payments:read", "admin"],
                        "tripline.privilege.approved": False,
                    },
                ):
                    pass
                with revoked:
                    revoked.wait_for(lambda: task.id in held, timeout=30)
                if task.id not in held:
                    raise SystemExit(f"task {task.id} was not revoked within 30 s")
                try:
                    task.check("execute_tool get_order")
                except tripline.TaskRevokedError:
                    pass
                else:
                    raise SystemExit(f"task {task.id}: the tool call after the revocation was not refused")
                if not exporter.handed.wait(10):
                    raise SystemExit(f"task {task.id}: the offending span never reached the exporter")
                print(json.dumps({"taskId": task.id, "t0": exporter.t0, "tc": held[task.id]}), flush=True)
                raise tripline.TaskRevokedError(task_id=task.id, revocation_id="", reason="bench", operation="bench", revoked_at_ms=held[task.id])
        except tripline.TaskRevokedError:
            pass
        time.sleep(0.02)
    tl.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
