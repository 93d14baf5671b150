"""A LangGraph agent traced by OpenInference's LangChain instrumentation, for Tripline's end-to-end tests.

    agent.py --endpoint http://127.0.0.1:4318 --token <agent token> --plan plan.json --mode wrapper|trace

The plan is a JSON list of tasks ``{"label", "taskType", "taskId", "calls": [{"tool", "args"}]}``. For each task a
scripted chat model (no network, no weights) emits the planned tool calls in order, one ``AIMessage(tool_calls=...)``
per turn, then a final text answer; a hand-built ``StateGraph`` (an ``agent`` node and a ``ToolNode``) runs the
tools, real Python functions; ``get_order`` and ``export_customers`` read a small SQLite database traced by
opentelemetry-instrumentation-sqlite3. Spans go to Tripline through the official OpenTelemetry
SDK (OTLP/HTTP protobuf, BatchSpanProcessor).

Modes (no Tripline attribute is ever set on the framework's spans):
  wrapper  each run is wrapped in a span of this script's own tracer carrying ``tripline.task.id`` (and
           ``tripline.task.type`` unless the resource declares it), the way a user marks a task.
  trace    no task id anywhere: each run is its own trace, the task type comes from the resource
           (``OTEL_RESOURCE_ATTRIBUTES=tripline.task.type=...``, or the plan's single type when that is unset).

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

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from shop import Call, RootTraceRecorder, Task, load_plan, make_database  # noqa: E402  (the agents' shared module)

AGENT_NAME = "refund-agent"
TASK_TYPE_ATTRIBUTE = "tripline.task.type"


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays a script: the current task's tool calls, one per turn, then a text answer."""

    script: list[Call] = []

    @property
    def _llm_type(self) -> str:
        return "scripted-refund-model"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        made = sum(len(message.tool_calls) for message in messages if isinstance(message, AIMessage))
        if made < len(self.script):
            call = self.script[made]
            message = AIMessage(content="", tool_calls=[{"name": call.tool, "args": call.args, "id": f"call_{made + 1}", "type": "tool_call"}])
        else:
            message = AIMessage(content=f"Done: {made} tool calls.")
        return ChatResult(generations=[ChatGeneration(message=message)])


def make_tools(database: str) -> list[BaseTool]:
    def query(sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(database)
        try:
            cursor = connection.cursor()
            cursor.execute(sql, tuple(parameters))
            return cursor.fetchall()
        finally:
            connection.close()

    @tool
    def get_order(order_id: str) -> dict[str, Any]:
        """Look an order up by its id."""
        rows = query("SELECT id, customer_id, total, status FROM orders WHERE id = ?", (order_id,))
        if not rows:
            return {"error": f"no order {order_id}"}
        id_, customer_id, total, status = rows[0]
        return {"id": id_, "customer_id": customer_id, "total": total, "status": status}

    @tool
    def export_customers(limit: int = 50) -> list[dict[str, Any]]:
        """Export the customer list."""
        rows = query("SELECT id, name, email, card_last4 FROM customers ORDER BY id LIMIT ?", (limit,))
        return [{"id": r[0], "name": r[1], "email": r[2], "card_last4": r[3]} for r in rows]

    @tool
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Refund part or all of an order."""
        return {"order_id": order_id, "refunded": amount, "status": "ok"}

    @tool
    def http_post(url: str, body: str) -> dict[str, Any]:
        """POST a body to a URL (a stub: nothing leaves the machine)."""
        return {"url": url, "status": 200, "bytes": len(body)}

    return [get_order, export_customers, issue_refund, http_post]


def build_graph(model: ScriptedChatModel, tools: list[BaseTool], name: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    bound = model.bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile(name=name)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True, help="OTLP/HTTP base URL, e.g. http://127.0.0.1:4318")
    parser.add_argument("--token", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--mode", choices=["wrapper", "trace"], required=True)
    parser.add_argument("--agent", default=AGENT_NAME, help="the agent's name (and, prefixed, its service.name)")
    args = parser.parse_args()
    plan = load_plan(args.plan)

    resource = Resource.create({"service.name": f"langgraph-{args.agent}"})
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
    LangChainInstrumentor().instrument(tracer_provider=provider)
    tracer = provider.get_tracer("tripline-test-agent")

    model = ScriptedChatModel()
    graph = build_graph(model, make_tools(database), args.agent)
    for task in plan:
        model.script = task.calls
        prompt = f"Handle support request ({task.label}, {len(task.calls)} steps)."
        config: RunnableConfig = {"recursion_limit": 4 * len(task.calls) + 10}
        if args.mode == "wrapper":
            # The type once per process on the resource (OTEL_RESOURCE_ATTRIBUTES) leaves the wrapper the task id only.
            attributes: dict[str, str] = {} if resource.attributes.get(TASK_TYPE_ATTRIBUTE) == task.task_type else {"tripline.task.type": task.task_type}
            if task.task_id is not None:
                attributes["tripline.task.id"] = task.task_id
            with tracer.start_as_current_span("task " + task.task_type, attributes=attributes) as span:
                graph.invoke({"messages": [("user", prompt)]}, config)
                trace_id = span.get_span_context().trace_id
        else:
            roots.trace_id = None
            graph.invoke({"messages": [("user", prompt)]}, config)
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
