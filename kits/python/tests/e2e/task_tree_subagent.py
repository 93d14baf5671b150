"""A sub-agent behind a small HTTP server, for test/e2e/task-trees.test.ts: an orchestrator (another process, another
language) calls it with W3C ``baggage`` naming its task; each request runs one task of the kit here, started with the
request's headers (so it is the orchestrator's child), or with a ``parentId`` the body names outright (a forged one).

``POST /run`` ``{"runId", "taskType", "calls": [{"tool", "args"}], "after"?: [{"tool", "args"}], "parentId"?}``: the
task makes ``calls`` (each checked by the guard first, then traced as a tool call with arguments and result); with
``after`` it then pauses until ``POST /continue/<runId>`` (the test acts on Tripline meanwhile) and makes those. The
answer: ``{"taskId", "parentId", "ran": [tool...], "refused": null | {"tool", "code", "reason"}}``.
``GET /runs/<runId>``: ``{"state": "running" | "paused" | "done", "taskId", "parentId", "answer"?}``.

Prints ``{"port": N}`` once listening; stops on stdin's end.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import tripline
from tripline.spans import record_result, tool_call_span

#: Longest pause of a run waiting for its continue.
PAUSE_S = 60.0


class Runs:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, dict[str, Any]] = {}
        self.resume: dict[str, threading.Event] = {}

    def set(self, run_id: str, **values: Any) -> None:
        with self.lock:
            self.state.setdefault(run_id, {}).update(values)

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.state.get(run_id)
            return None if found is None else dict(found)

    def event(self, run_id: str) -> threading.Event:
        with self.lock:
            return self.resume.setdefault(run_id, threading.Event())


def tool_result(tool: str, args: dict[str, Any]) -> Any:
    """What the (fake) tools answer: enough for the spans to look like a real agent's."""
    if tool == "get_order":
        return {"order_id": args.get("order_id"), "status": "delivered", "total": 42.5}
    if tool == "export_customers":
        return [{"id": i, "email": f"customer{i}@shop.example"} for i in range(int(args.get("limit", 1)))]
    if tool == "http_post":
        return {"status": 200}
    return {"ok": True}


def make_calls(task: tripline.Task, calls: list[dict[str, Any]], ran: list[str]) -> None:
    for call in calls:
        tool, args = str(call["tool"]), dict(call.get("args") or {})
        task.enforce(f"execute_tool {tool}", tool)
        with tool_call_span(task, tool, arguments=args) as span:
            record_result(span, tool_result(tool, args))
        ran.append(tool)


def handler_for(tl: tripline.Tripline, runs: Runs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            run = runs.get(self.path.removeprefix("/runs/"))
            self.answer(404 if run is None else 200, run or {})

        def do_POST(self) -> None:
            if self.path.startswith("/continue/"):
                runs.event(self.path.removeprefix("/continue/")).set()
                self.answer(200, {})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
            self.answer(200, self.run(body))

        def run(self, body: dict[str, Any]) -> dict[str, Any]:
            run_id = str(body["runId"])
            runs.set(run_id, state="running")
            ran: list[str] = []
            refused: dict[str, str] | None = None
            headers = {key: value for key, value in self.headers.items()}
            scope = tl.task(str(body["taskType"]), incoming_headers=headers, parent_id=body.get("parentId"))
            with scope as task:
                runs.set(run_id, taskId=task.id, parentId=task.parent_id)
                try:
                    make_calls(task, list(body["calls"]), ran)
                    if body.get("after") is not None:
                        tl.force_flush()
                        runs.set(run_id, state="paused")
                        runs.event(run_id).wait(PAUSE_S)
                        make_calls(task, list(body["after"]), ran)
                except tripline.TaskRevokedError as error:
                    refused = {"tool": error.operation.removeprefix("execute_tool "), "code": error.code, "reason": error.reason}
            tl.force_flush()
            answer = {"taskId": task.id, "parentId": task.parent_id, "ran": ran, "refused": refused}
            runs.set(run_id, state="done", answer=answer)
            return answer

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--agent", required=True)
    options = parser.parse_args()
    tl = tripline.Tripline(agent_id=options.agent, endpoint=options.endpoint, api_url=options.api, token=options.token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(tl, Runs()))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()
    tl.shutdown()


if __name__ == "__main__":
    main()
