"""An MCP client agent protected by the tripline kit, for the kit's end-to-end tests.

    mcp_agent.py --endpoint http://127.0.0.1:4318 --api http://127.0.0.1:8080 --token <agent token> \
        --agent <agent id> --plan plan.json --server-log calls.jsonl

Starts mcp_server.py over stdio (the official ``mcp`` package on both sides) and, for each planned task, inside
``async with tl.task(...)``: reads the ``shop://policies/refunds`` resource, then calls the planned tools through the
session wrapped by ``guard_mcp_session``. For a task with ``afterRevocation`` it then waits for the revocation and
calls that tool, which the guard must refuse before the request leaves. Prints one line per task (plan.py);
``ran`` lists the calls the server answered (the server's own log is the proof that a refused one never arrived).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plan  # noqa: E402  (the sibling module: the script's folder is on sys.path)
from plan import REVOCATION_WAIT_S, Outcome, load_plan  # noqa: E402

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

import tripline
from tripline.integrations.mcp import guard_mcp_session

HERE = os.path.dirname(os.path.abspath(__file__))
READ_ONLY = {"get_order", "export_customers"}


async def wait_for_revocation(task: tripline.Task) -> float:
    started = time.monotonic()
    while not task.revoked and time.monotonic() - started < REVOCATION_WAIT_S:
        await asyncio.sleep(0.005)
    return (time.monotonic() - started) * 1000


async def run(args: argparse.Namespace) -> None:
    tl = plan.start_tripline(args)
    server = StdioServerParameters(command=sys.executable, args=[os.path.join(HERE, "mcp_server.py"), "--log", args.server_log])
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        mcp = guard_mcp_session(session, side_effect_of=lambda name: "read" if name in READ_ONLY else "write")
        for planned in load_plan(args.plan):
            outcome = Outcome(label=planned.label)
            try:
                async with tl.task(planned.task_type) as task:
                    outcome.task_id = task.id
                    await mcp.read_resource("shop://policies/refunds")
                    for call in planned.calls:
                        await mcp.call_tool(call.tool, call.args)
                        outcome.ran.append(call)
                    if planned.after_revocation is not None:
                        outcome.waited_ms = await wait_for_revocation(task)
                        await mcp.call_tool(planned.after_revocation.tool, planned.after_revocation.args)
                        outcome.ran.append(planned.after_revocation)
            except tripline.TaskRevokedError as error:
                outcome.refused = error
            print(outcome.line(), flush=True)
    tl.shutdown()


def main() -> int:
    args = plan.agent_arguments("--server-log")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
