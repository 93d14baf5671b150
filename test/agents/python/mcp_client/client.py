"""An MCP client (the official ``mcp`` package, its high-level ``Client``) behind Tripline's MCP gateway.

    client.py --url http://127.0.0.1:8090/mcp/shop --token <bearer> --plan plan.json

For each planned session (``[{"label", "calls": [{"tool", "args"}], "read": bool, "afterRevocation"?: {"tool",
"args"}, "waitFile"?: "path"}]``) it connects with the bearer token (the SDK negotiates the protocol version: it
probes ``server/discover`` and falls back to ``initialize``), lists the tools, reads ``shop://policies/refunds`` when
``read`` is set, and makes the calls. With ``afterRevocation`` it waits until ``waitFile`` exists (the test writes it
once Tripline revoked the session's task), then makes that call. Prints one JSON line per session:
``{"label", "tools": [...], "ran": [...], "refused": null | {"tool", "code", "message", "data"}}``.
``--expect-unauthorized`` instead connects once and prints ``{"unauthorized": true, "error": "..."}`` if the
gateway refused the credential.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

WAIT_S = 60.0


def client_for(url: str, token: str) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(url, http_client=http))


async def wait_for(path: str) -> None:
    started = time.monotonic()
    while not os.path.exists(path) and time.monotonic() - started < WAIT_S:
        await asyncio.sleep(0.02)


async def run_session(url: str, token: str, planned: dict[str, Any]) -> dict[str, Any]:
    outcome: dict[str, Any] = {"label": planned["label"], "tools": [], "ran": [], "refused": None}
    async with client_for(url, token) as client:
        listed = await client.list_tools()
        outcome["tools"] = [tool.name for tool in listed.tools]
        if planned.get("read"):
            await client.read_resource("shop://policies/refunds")
        calls: list[dict[str, Any]] = list(planned["calls"])
        after = planned.get("afterRevocation")
        try:
            for call in calls:
                await client.call_tool(call["tool"], call["args"])
                outcome["ran"].append(call)
            if after is not None:
                await wait_for(planned["waitFile"])
                await client.call_tool(after["tool"], after["args"])
                outcome["ran"].append(after)
        except MCPError as error:
            failed = after if len(outcome["ran"]) == len(calls) and after is not None else calls[len(outcome["ran"])]
            data = error.error.data if isinstance(error.error.data, dict) else {}
            outcome["refused"] = {"tool": failed["tool"], "code": data.get("code"), "message": error.error.message, "mcpCode": error.code, "data": data}
    return outcome


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (anyio's) exception groups; duck-typed, as Python 3.10 has no BaseExceptionGroup."""
    inner: Any = getattr(error, "exceptions", None)
    if isinstance(inner, (list, tuple)):
        return [leaf for nested in inner for leaf in leaves(nested)]
    return [error]


async def unauthorized(url: str, token: str) -> dict[str, Any]:
    try:
        async with client_for(url, token) as client:
            await client.list_tools()
    except Exception as error:  # noqa: BLE001 - the test reads what the SDK raised
        return {"unauthorized": True, "error": "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in leaves(error))}
    return {"unauthorized": False, "error": None}


async def run(args: argparse.Namespace) -> None:
    if args.expect_unauthorized:
        print(json.dumps(await unauthorized(args.url, args.token)), flush=True)
        return
    with open(args.plan, encoding="utf-8") as file:
        plan: list[dict[str, Any]] = json.load(file)
    for planned in plan:
        print(json.dumps(await run_session(args.url, args.token, planned)), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="the gateway's URL of the MCP server")
    parser.add_argument("--token", required=True, help="the bearer token (a client token or a task token)")
    parser.add_argument("--plan", help="the sessions to run (JSON)")
    parser.add_argument("--expect-unauthorized", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
