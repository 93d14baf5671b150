"""The MCP integration against an in-process MCP server (the official ``mcp`` package on both sides): a guarded
session's calls are refused once the task is revoked (the server never sees them), each call is one span (the MCP
SDK's own client span, with the kit's attributes), and the task token travels in ``_meta`` when asked to.

This module registers the global tracer provider (``install=True``, as a user's agent does); the other modules use
providers of their own."""

from __future__ import annotations

import asyncio
import json
import unittest
from typing import Any

from mcp import ClientSession
from mcp.client._memory import InMemoryTransport
from mcp.server.mcpserver import Context, MCPServer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tripline
from tripline.integrations.mcp import TOKEN_META_KEY, guard_mcp_session

from .fake_tripline import FakeTripline, revocation


def shop(calls: list[dict[str, Any]]) -> MCPServer:
    server = MCPServer("shop")

    @server.tool()
    def get_order(order_id: str, ctx: Context) -> dict[str, Any]:
        """Look an order up by its id."""
        meta = ctx.request_context.meta
        calls.append({"order_id": order_id, "token": None if meta is None else dict(meta).get(TOKEN_META_KEY)})
        return {"id": order_id, "status": "delivered"}

    @server.resource("shop://policies/refunds")
    def refund_policy() -> str:
        """The refund policy."""
        return "Refunds up to 50 EUR without approval."

    return server


class McpTest(unittest.TestCase):
    def test_guarded_session(self) -> None:
        fake = FakeTripline()
        exported = InMemorySpanExporter()
        tl = tripline.Tripline(agent_id="unit-agent", api_url=fake.url, exporter=exported, credentials=True, install=True)
        calls: list[dict[str, Any]] = []

        async def agent() -> tuple[tripline.Task, tripline.TaskRevokedError | None]:
            refused = None
            async with InMemoryTransport(shop(calls)) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                mcp = guard_mcp_session(session, forward_token=True, target="shop", side_effect_of=lambda name: "read")
                async with tl.task("customer_refund", tools=["get_order"]) as task:
                    await mcp.call_tool("get_order", {"order_id": "ord-1"})
                    await mcp.read_resource("shop://policies/refunds")
                    fake.push("revocation", revocation(task.id))
                    for _ in range(1000):
                        if task.revoked:
                            break
                        await asyncio.sleep(0.005)
                    try:
                        await mcp.call_tool("get_order", {"order_id": "ord-after"})
                    except tripline.TaskRevokedError as error:
                        refused = error
                    self.assertIsNotNone(await mcp.list_tools())  # other methods pass through
            return task, refused

        try:
            task, refused = asyncio.run(agent())
            tl.force_flush()
        finally:
            tl.shutdown()
            fake.stop()
        self.assertIsNotNone(refused)
        self.assertEqual(calls, [{"order_id": "ord-1", "token": "token-1"}], "the refused call never reached the server")
        # The client's spans: the in-process server traces its side too (in real use, in its own process).
        spans = [span for span in exported.get_finished_spans() if span.kind != SpanKind.SERVER]
        tool_spans = [span for span in spans if (span.attributes or {}).get("mcp.method.name") == "tools/call"]
        self.assertEqual(len(tool_spans), 1, [span.name for span in spans])
        tool = tool_spans[0].attributes or {}
        self.assertTrue(tool_spans[0].name.startswith("MCP send tools/call"), tool_spans[0].name)
        self.assertEqual(tool["gen_ai.tool.name"], "get_order")
        self.assertEqual(tool["gen_ai.operation.name"], "execute_tool")
        self.assertEqual(tool["tripline.tool.side_effect"], "read")
        self.assertEqual(tool["tripline.tool.target"], "shop")
        self.assertEqual(json.loads(str(tool["gen_ai.tool.call.arguments"])), {"order_id": "ord-1"})
        self.assertEqual(tool["tripline.task.id"], task.id)
        reads = [span for span in spans if (span.attributes or {}).get("mcp.method.name") == "resources/read"]
        self.assertEqual(len(reads), 1)
        self.assertEqual((reads[0].attributes or {})["mcp.resource.uri"], "shop://policies/refunds")
        root = next(span for span in spans if span.name == "task customer_refund")
        self.assertIn("tripline.operation_refused", [event.name for event in root.events])


if __name__ == "__main__":
    unittest.main()
