"""A small MCP server (the official ``mcp`` package's ``MCPServer``, over stdio) for the kit's end-to-end tests.

    mcp_server.py --log calls.jsonl

Tools ``get_order``, ``export_customers``, ``issue_refund`` and ``http_post`` (a stub: nothing leaves the machine),
and a resource ``shop://policies/refunds``. Every tool that runs appends ``{"tool", "args"}`` to the log file: the
test reads it to prove a refused call never reached the server.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mcp.server.mcpserver import MCPServer
import plan  # the sibling module (the script's folder is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True, help="a JSON-lines file of the tool calls that ran")
    args = parser.parse_args()

    def ran(tool: str, **arguments: Any) -> None:
        with open(args.log, "a", encoding="utf-8") as log:
            log.write(json.dumps({"tool": tool, "args": arguments}) + "\n")

    server = MCPServer("shop")

    @server.tool()
    def get_order(order_id: str) -> dict[str, Any]:
        """Look an order up by its id."""
        ran("get_order", order_id=order_id)
        return plan.order(order_id)

    @server.tool()
    def export_customers(limit: int = 50) -> list[dict[str, Any]]:
        """Export the customer list."""
        ran("export_customers", limit=limit)
        return plan.customers(limit)

    @server.tool()
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Refund part or all of an order."""
        ran("issue_refund", order_id=order_id, amount=amount)
        return plan.refund(order_id, amount)

    @server.tool()
    def http_post(url: str, body: str) -> dict[str, Any]:
        """POST a body to a URL (a stub: nothing leaves the machine)."""
        ran("http_post", url=url, body=body)
        return plan.posted(url, body)

    @server.resource("shop://policies/refunds")
    def refund_policy() -> str:
        """The shop's refund policy."""
        return "Refunds up to 50 EUR without approval; above, a person approves."

    server.run("stdio")


if __name__ == "__main__":
    main()
