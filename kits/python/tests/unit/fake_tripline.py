"""A stand-in for Tripline's API in unit tests: ``/v1/stream`` (server-sent events the test pushes), ``/v1/check``,
``/v1/tasks`` and revocation acknowledgements, on a local port. The end-to-end tests use the real Tripline."""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeTripline:
    def __init__(self) -> None:
        self.snapshot: list[tuple[str, dict[str, Any]]] = []
        self.acks: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.started: list[dict[str, Any]] = []
        self.check_answer: dict[str, Any] = {"allowed": True, "task": {"revoked": False}}
        self.stream_requests: list[str] = []
        self._streams: list[queue.Queue[tuple[str, dict[str, Any]] | None]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                return body if isinstance(body, dict) else {}

            def do_GET(self) -> None:
                if not self.path.startswith("/v1/stream"):
                    self._json(404, {})
                    return
                fake.stream_requests.append(self.path)
                events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
                with fake._lock:
                    fake._streams.append(events)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                try:
                    for name, data in fake.snapshot:
                        self._event(name, data)
                    self.wfile.write(b"event: ready\ndata: {}\n\n")
                    self.wfile.flush()
                    while True:
                        item = events.get()
                        if item is None:
                            return
                        self._event(*item)
                except OSError:
                    return
                finally:
                    with fake._lock:
                        fake._streams.remove(events)
                    self.close_connection = True

            def _event(self, name: str, data: dict[str, Any]) -> None:
                self.wfile.write(f"event: {name}\nid: {data.get('id', '')}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def do_POST(self) -> None:
                body = self._body()
                if self.path == "/v1/check":
                    fake.checks.append(body)
                    self._json(200, fake.check_answer)
                elif self.path.startswith("/v1/revocations/") and self.path.endswith("/ack"):
                    fake.acks.append({"id": self.path.split("/")[3], **body})
                    self._json(202, {"acknowledged": True})
                elif self.path == "/v1/tasks":
                    fake.started.append(body)
                    self._json(201, {"taskId": body.get("taskId") or f"task-{len(fake.started)}", "token": f"token-{len(fake.started)}"})
                else:
                    self._json(404, {})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def push(self, name: str, data: dict[str, Any]) -> None:
        with self._lock:
            for stream in self._streams:
                stream.put((name, data))

    def drop_streams(self) -> None:
        with self._lock:
            for stream in self._streams:
                stream.put(None)

    def connected_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def stop(self) -> None:
        self.drop_streams()
        self._server.shutdown()
        self._server.server_close()


def revocation(task_id: str, revocation_id: str = "a" * 32, action: str = "revoke", time_ms: float | None = None) -> dict[str, Any]:
    return {
        "id": revocation_id,
        "taskId": task_id,
        "taskType": "customer_refund",
        "agentId": "unit-agent",
        "action": action,
        "source": "detector",
        "actor": "tripline/detector",
        "reason": "score reached the revoke threshold",
        "reasons": ["novel tool http_post"],
        "score": 100,
        "timeMs": time_ms if time_ms is not None else time.time() * 1000,
    }


def wait_until(check: Any, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return bool(check())
