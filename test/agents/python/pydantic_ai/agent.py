"""A pydantic-ai agent traced by pydantic-ai's own instrumentation, for Tripline's end-to-end tests.

    agent.py --endpoint http://127.0.0.1:4318 --token <agent token> --plan plan.json --mode wrapper|trace

The plan is a JSON list of tasks ``{"label", "taskType", "taskId", "calls": [{"tool", "args"}]}``. For each task a
scripted model (``FunctionModel``: no network, no weights) calls the planned tools in order, one per model turn,
then answers with text. The tools are real Python functions; ``get_order`` and ``export_customers`` read a small
SQLite database traced by opentelemetry-instrumentation-sqlite3; ``read_invoice`` reads the suppliers' invoices of
test/agents/invoices.json (one carries an injected instruction) and ``pay_invoice`` pays one (a stub). Spans go to
Tripline through the official OpenTelemetry SDK (OTLP/HTTP protobuf, BatchSpanProcessor).

Modes (no Tripline attribute is ever set on the framework's spans):
  wrapper  each run is wrapped in a span of this script's own tracer carrying ``tripline.task.id`` (and
           ``tripline.task.type`` unless the resource declares it), the way a user marks a task.
  trace    no task id anywhere: each run is its own trace, the task type comes from the resource
           (``OTEL_RESOURCE_ATTRIBUTES=tripline.task.type=...``, or the plan's single type when that is unset) and
           the agent id from the framework's ``gen_ai.agent.name``.

After each task it prints ``{"label", "taskId", "traceId"}`` as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from shop import Call, RootTraceRecorder, Task, invoice_view, load_invoices, load_plan, make_database  # noqa: E402  (the agents' shared module)
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.usage import UsageLimits

AGENT_NAME = "refund-agent"
TASK_TYPE_ATTRIBUTE = "tripline.task.type"


def build_agent(database: str, script: dict[str, list[Call]], name: str) -> Agent[None, str]:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls = script["current"]
        made = sum(1 for message in messages if isinstance(message, ModelResponse) for part in message.parts if isinstance(part, ToolCallPart))
        if made < len(calls):
            call = calls[made]
            return ModelResponse(parts=[ToolCallPart(tool_name=call.tool, args=call.args, tool_call_id=f"call_{made + 1}")])
        return ModelResponse(parts=[TextPart(content=f"Done: {made} tool calls.")])

    agent: Agent[None, str] = Agent(
        FunctionModel(model, model_name="scripted-refund-model"),
        name=name,
        instructions="You are a customer-support agent for an online shop. Use the tools to handle refunds.",
    )

    def query(sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(database)
        try:
            cursor = connection.cursor()
            cursor.execute(sql, tuple(parameters))
            return cursor.fetchall()
        finally:
            connection.close()

    @agent.tool_plain
    def get_order(order_id: str) -> dict[str, Any]:
        """Look an order up by its id."""
        rows = query("SELECT id, customer_id, total, status FROM orders WHERE id = ?", (order_id,))
        if not rows:
            return {"error": f"no order {order_id}"}
        id_, customer_id, total, status = rows[0]
        return {"id": id_, "customer_id": customer_id, "total": total, "status": status}

    @agent.tool_plain
    def export_customers(limit: int = 50) -> list[dict[str, Any]]:
        """Export the customer list."""
        rows = query("SELECT id, name, email, card_last4 FROM customers ORDER BY id LIMIT ?", (limit,))
        return [{"id": r[0], "name": r[1], "email": r[2], "card_last4": r[3]} for r in rows]

    @agent.tool_plain
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Refund part or all of an order."""
        return {"order_id": order_id, "refunded": amount, "status": "ok"}

    @agent.tool_plain
    def http_post(url: str, body: str) -> dict[str, Any]:
        """POST a body to a URL (a stub: nothing leaves the machine)."""
        return {"url": url, "status": 200, "bytes": len(body)}

    invoices = load_invoices()

    @agent.tool_plain
    def read_invoice(invoice_id: str) -> dict[str, Any]:
        """Read a supplier's invoice: who sent it, the account to pay and the amount due."""
        return invoice_view(invoices, invoice_id)

    @agent.tool_plain
    def pay_invoice(invoice_id: str, iban: str, amount: float) -> dict[str, Any]:
        """Pay an invoice to an account (a stub: no money moves)."""
        return {"invoice_id": invoice_id, "paid": amount, "status": "paid"}

    return agent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True, help="OTLP/HTTP base URL, e.g. http://127.0.0.1:4318")
    parser.add_argument("--token", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--mode", choices=["wrapper", "trace"], required=True)
    parser.add_argument("--agent", default=AGENT_NAME, help="the agent's name (and, prefixed, its service.name)")
    args = parser.parse_args()
    plan = load_plan(args.plan)

    resource = Resource.create({"service.name": f"pydantic-ai-{args.agent}"})
    if args.mode == "trace":
        types = {task.task_type for task in plan}
        declared = resource.attributes.get(TASK_TYPE_ATTRIBUTE)
        if declared is None:
            if len(types) != 1:
                raise SystemExit(f"trace mode needs one task type per process, the plan has {sorted(types)}")
            resource = resource.merge(Resource({TASK_TYPE_ATTRIBUTE: next(iter(types))}))
        elif types != {declared}:
            raise SystemExit(f"the resource's {TASK_TYPE_ATTRIBUTE}={declared!r} is not the plan's {sorted(types)}")

    # The shop's database exists before the agent starts: only the agent's own queries are traced.
    directory = tempfile.TemporaryDirectory()
    database = make_database(directory.name)

    provider = TracerProvider(resource=resource)
    roots = RootTraceRecorder()
    provider.add_span_processor(roots)
    exporter = OTLPSpanExporter(endpoint=args.endpoint.rstrip("/") + "/v1/traces", headers={"authorization": f"Bearer {args.token}"})
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    SQLite3Instrumentor().instrument(tracer_provider=provider)
    Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))
    tracer = provider.get_tracer("tripline-test-agent")

    script: dict[str, list[Call]] = {"current": []}
    agent = build_agent(database, script, args.agent)
    for task in plan:
        script["current"] = task.calls
        prompt = f"Handle support request ({task.label}, {len(task.calls)} steps)."
        limits = UsageLimits(request_limit=None)
        if args.mode == "wrapper":
            # The type once per process on the resource (OTEL_RESOURCE_ATTRIBUTES) leaves the wrapper the task id only.
            attributes: dict[str, str] = {} if resource.attributes.get(TASK_TYPE_ATTRIBUTE) == task.task_type else {"tripline.task.type": task.task_type}
            if task.task_id is not None:
                attributes["tripline.task.id"] = task.task_id
            with tracer.start_as_current_span("task " + task.task_type, attributes=attributes) as span:
                agent.run_sync(prompt, usage_limits=limits)
                trace_id = span.get_span_context().trace_id
        else:
            roots.trace_id = None
            agent.run_sync(prompt, usage_limits=limits)
            if roots.trace_id is None:
                raise SystemExit("the run started no root span")
            trace_id = roots.trace_id
        print(json.dumps({"label": task.label, "taskId": task.task_id if args.mode == "wrapper" else None, "traceId": f"{trace_id:032x}"}), flush=True)

    provider.force_flush()
    provider.shutdown()
    directory.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
