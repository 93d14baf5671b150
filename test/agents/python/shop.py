"""The plan format every test agent reads, the trace-id recorder, the test shop's SQLite database and its support
tools as plain functions: shared by the Python test agents (each imports it from the folder above its own)."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor


@dataclass(frozen=True)
class Call:
    tool: str
    args: dict[str, Any]
    # Asked for in the same model turn as the call before it (parallel function calls), by agents that support it.
    with_previous: bool = False


@dataclass(frozen=True)
class Task:
    label: str
    task_type: str
    task_id: str | None
    calls: list[Call]


def load_plan(path: str) -> list[Task]:
    with open(path, encoding="utf-8") as file:
        raw: list[dict[str, Any]] = json.load(file)
    return [
        Task(
            label=str(item["label"]),
            task_type=str(item["taskType"]),
            task_id=None if item.get("taskId") is None else str(item["taskId"]),
            calls=[
                Call(
                    tool=str(call["tool"]),
                    args=dict(call.get("args") or {}),
                    with_previous=bool(call.get("withPrevious", False)),
                )
                for call in item["calls"]
            ],
        )
        for item in raw
    ]


class RootTraceRecorder(SpanProcessor):
    """Remembers the trace id of the first root span started since the last reset: the run's trace in trace mode.

    The first one, not the last: other root spans may start during a run (OpenInference never makes its spans
    current, so a span that a tool makes, e.g. a database query, can be the root of a trace of its own).
    """

    def __init__(self) -> None:
        self.trace_id: int | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.parent is None and self.trace_id is None:
            self.trace_id = span.get_span_context().trace_id

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_database(directory: str) -> str:
    path = os.path.join(directory, "shop.db")
    connection = sqlite3.connect(path)
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, customer_id INTEGER, total REAL, status TEXT)")
    cursor.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, card_last4 TEXT)")
    cursor.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?)",
        [(i, f"Customer {i}", f"customer{i}@shop.example", f"{1000 + i * 7 % 9000:04d}") for i in range(1, 51)],
    )
    cursor.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?)",
        [(f"ord-{i}", 1 + i % 50, 10.0 + i % 90, "delivered") for i in range(1, 201)],
    )
    connection.commit()
    connection.close()
    return path


INVOICES_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "invoices.json")


def load_invoices() -> dict[str, dict[str, Any]]:
    """The suppliers' invoices by id (test/agents/invoices.json, shared with the TypeScript agent and the tests),
    the poisoned one with its note."""
    with open(INVOICES_FILE, encoding="utf-8") as file:
        raw: dict[str, Any] = json.load(file)
    invoices = {str(item["id"]): dict(item) for item in raw["invoices"]}
    poisoned = raw["poisoned"]
    invoices[str(poisoned["id"])] = {key: poisoned[key] for key in ("id", "supplier", "email", "iban", "amount", "note")}
    return invoices


def invoice_view(invoices: dict[str, dict[str, Any]], invoice_id: str) -> dict[str, Any]:
    """What ``read_invoice`` returns: the invoice as the supplier wrote it (a note included)."""
    invoice = invoices.get(invoice_id)
    if invoice is None:
        return {"error": f"no invoice {invoice_id}"}
    view = {"invoice_id": invoice["id"], "supplier": invoice["supplier"], "contact": invoice["email"], "pay_to_iban": invoice["iban"], "amount_due": invoice["amount"]}
    if "note" in invoice:
        view["note"] = invoice["note"]
    return view


# ---- The support tools as plain functions (stubs: nothing leaves the machine), for the frameworks that make tools
# from a function's signature and docstring (smolagents, LlamaIndex). The docstrings' Args sections describe the
# parameters to the model (smolagents requires one per parameter).
def get_order(order_id: str) -> dict[str, Any]:
    """Look up an order by its id.

    Args:
        order_id: The order's id, e.g. ord-17.
    """
    return {"order_id": order_id, "amount": 42.5, "status": "delivered"}


def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    """Refund (part of) an order.

    Args:
        order_id: The order's id.
        amount: How much to refund.
    """
    return {"order_id": order_id, "refunded": amount, "status": "refunded"}


def export_customers(limit: int = 3) -> dict[str, Any]:
    """Export (the first rows of) the customer list.

    Args:
        limit: How many customers to export.
    """
    return {"customers": [{"id": f"c-{n}", "email": f"customer{n}@shop.example"} for n in range(1, limit + 1)]}


def http_post(url: str, body: str) -> dict[str, Any]:
    """POST a body to a URL.

    Args:
        url: Where to post.
        body: What to post.
    """
    return {"url": url, "status": 200, "bytes": len(body)}


SUPPORT_TOOLS = [get_order, issue_refund, export_customers, http_post]
