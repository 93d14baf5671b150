"""The plan the kit's end-to-end agents run, and the line each prints per task (shared by the test agents here).

A plan is a JSON list of tasks ``{"label", "taskType", "calls": [{"tool", "args"}], "afterRevocation"?: {"tool",
"args"}}``. The agent makes ``calls`` in order; with ``afterRevocation`` it then waits (bounded) until Tripline has
revoked the task, as a model thinking between two calls would, and makes that call: the guard must refuse it.

After each task the agent prints one JSON line: ``{"label", "taskId", "ran": [{"tool", "args"}], "refused": null |
{"tool", "code", "revocationId", "reason"}, "waitedMs"}``; ``ran`` lists the tool calls that executed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import tripline

#: How long an agent waits for Tripline to revoke a misbehaving task before making its next call anyway.
REVOCATION_WAIT_S = 30.0


@dataclass(frozen=True)
class Call:
    tool: str
    args: dict[str, Any]


@dataclass(frozen=True)
class PlannedTask:
    label: str
    task_type: str
    calls: list[Call]
    after_revocation: Call | None = None


@dataclass
class Outcome:
    label: str
    task_id: str = ""
    ran: list[Call] = field(default_factory=list)
    refused: tripline.TaskRevokedError | None = None
    waited_ms: float | None = None

    def line(self) -> str:
        refused = None
        if self.refused is not None:
            refused = {"tool": self.refused.operation.removeprefix("execute_tool "), "code": self.refused.code, "revocationId": self.refused.revocation_id, "reason": self.refused.reason}
        return json.dumps(
            {
                "label": self.label,
                "taskId": self.task_id,
                "ran": [{"tool": call.tool, "args": call.args} for call in self.ran],
                "refused": refused,
                "waitedMs": self.waited_ms,
            }
        )


def _call(raw: dict[str, Any]) -> Call:
    return Call(tool=str(raw["tool"]), args=dict(raw.get("args") or {}))


def load_plan(path: str) -> list[PlannedTask]:
    with open(path, encoding="utf-8") as file:
        raw: list[dict[str, Any]] = json.load(file)
    return [
        PlannedTask(
            label=str(item["label"]),
            task_type=str(item["taskType"]),
            calls=[_call(call) for call in item["calls"]],
            after_revocation=None if item.get("afterRevocation") is None else _call(item["afterRevocation"]),
        )
        for item in raw
    ]


def wait_for_revocation(task: tripline.Task, timeout_s: float = REVOCATION_WAIT_S) -> float:
    """Waits until the guard holds the task's revocation (or the timeout); returns the milliseconds waited."""
    started = time.monotonic()
    while not task.revoked and time.monotonic() - started < timeout_s:
        time.sleep(0.005)
    return (time.monotonic() - started) * 1000


def agent_arguments(*extra: str) -> argparse.Namespace:
    """The command line every test agent takes (``--endpoint``, ``--api``, ``--token``, ``--agent``, ``--plan``),
    plus its own required ``extra`` flags."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True, help="OTLP/HTTP base URL")
    parser.add_argument("--api", required=True, help="Tripline's API base URL")
    parser.add_argument("--token", required=True, help="the agent token")
    parser.add_argument("--agent", required=True, help="the agent id")
    parser.add_argument("--plan", required=True)
    for flag in extra:
        parser.add_argument(flag, required=True)
    return parser.parse_args()


def start_tripline(args: argparse.Namespace) -> tripline.Tripline:
    """The kit set up as its README says, its own errors on stderr."""
    return tripline.Tripline(
        endpoint=args.endpoint,
        api_url=args.api,
        token=args.token,
        agent_id=args.agent,
        on_error=lambda error: print(f"tripline: {error}", file=sys.stderr),
    )


# What the shop's four tools answer, in every test agent and the MCP server (nothing leaves the machine).


def order(order_id: str) -> dict[str, Any]:
    return {"id": order_id, "customer_id": "cust-7", "total": 59.9, "status": "delivered"}


def customers(limit: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Customer {i}", "email": f"customer{i}@shop.example"} for i in range(1, limit + 1)]


def refund(order_id: str, amount: float) -> dict[str, Any]:
    return {"order_id": order_id, "refunded": amount, "status": "ok"}


def posted(url: str, body: str) -> dict[str, Any]:
    return {"url": url, "status": 200, "bytes": len(body)}
