"""The Python agent of test/e2e/approvals.test.ts: one refund per line of its stdin, each checked with Tripline first
(``task.check_call``, docs/approvals.md) and waiting for a person's approval when the policy asks for one.

    approval_agent.py --endpoint <otlp> --api <api> --token <agent token> --task-id <id>

Starts one ``customer_refund`` task with a task token (``credentials=True``), prints ``{"started": <task id>}``, then
for each JSON line ``{"order", "amount", "timeout_s"?, "on_pending"?}`` on stdin checks the call and, when allowed,
runs it inside an ``execute_tool issue_refund`` span; prints one JSON line per refund: ``{"ran": true, ...}`` or
``{"ran": false, "error": <class>, "code": <code>, "approvalId", "decidedBy"?, "reason"?}``.
"""

from __future__ import annotations

import argparse
import json
import sys

import tripline
from tripline.spans import tool_call_span


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--task-id", required=True)
    args = parser.parse_args()

    tl = tripline.Tripline(
        endpoint=args.endpoint,
        api_url=args.api,
        token=args.token,
        agent_id="refund-agent-python-approvals",
        credentials=True,
        export_delay_ms=20,
        on_error=lambda error: print(f"tripline: {error}", file=sys.stderr),
    )
    try:
        with tl.task(
            "customer_refund",
            task_id=args.task_id,
            tools=["get_order", "issue_refund"],
            resources=["payments"],
            scopes=["payments:refund"],
        ) as task:
            print(json.dumps({"started": task.id}), flush=True)
            for line in sys.stdin:
                if not line.strip():
                    continue
                refund = json.loads(line)
                call = {"order": refund["order"], "amount": refund["amount"]}
                try:
                    allowed = task.check_call(
                        "issue_refund",
                        arguments=call,
                        resource="payments",
                        side_effect="write",
                        on_pending=refund.get("on_pending", "wait"),
                        timeout_s=float(refund.get("timeout_s", 60)),
                        poll_interval_s=0.05,
                    )
                except tripline.TriplineError as error:
                    outcome = {"ran": False, "error": type(error).__name__, "code": error.code, **call}
                    for name in ("approval_id", "decided_by", "reason"):
                        if hasattr(error, name):
                            outcome[name] = getattr(error, name)
                    print(json.dumps(outcome), flush=True)
                    continue
                with tool_call_span(task, "issue_refund", side_effect="write", arguments=call):
                    pass
                print(json.dumps({"ran": True, "approval_id": allowed.approval_id, **call}), flush=True)
    finally:
        tl.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
