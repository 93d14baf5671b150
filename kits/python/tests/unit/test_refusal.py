"""A loop or rate limit's refuse step (docs/loops.md): the guard refuses a task's operations with TaskRefusedError
while an ``alert`` event's ``refuseUntilMs`` lasts (the task is not revoked), and so does a ``POST /v1/check``
answer naming ``task.refusing`` while the stream is down."""

from __future__ import annotations

import time
import unittest

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tripline

from .fake_tripline import FakeTripline, wait_until

REASON = "loop.repeat: tool get_order was called 10 times with the same arguments in this task (its next calls are refused)"


def kit(fake: FakeTripline, **options: object) -> tripline.Tripline:
    return tripline.Tripline(agent_id="unit-agent", api_url=fake.url, token="agent-token", install=False, exporter=InMemorySpanExporter(), **options)  # type: ignore[arg-type]


def refusal_alert(task_id: str, until_ms: float) -> dict[str, object]:
    return {"id": "f" * 32, "taskId": task_id, "decision": "alert", "reasons": [f"{REASON} until later"], "refuseUntilMs": until_ms}


class RefusalTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeTripline()

    def tearDown(self) -> None:
        self.fake.stop()

    def test_a_refusal_alert_refuses_the_task_until_it_ends(self) -> None:
        tl = kit(self.fake)
        try:
            self.assertTrue(tl.guard is not None and tl.guard.ready(5.0))
            self.assertIn("alert", self.fake.stream_requests[0])
            with tl.task("customer_refund") as task:
                task.check("execute_tool get_order")
                # Another task's refusal, and an alert without refuseUntilMs, refuse nothing here.
                self.fake.push("alert", refusal_alert("someone-else", time.time() * 1000 + 60_000))
                self.fake.push("alert", {"id": "e" * 32, "taskId": task.id, "decision": "alert", "reasons": ["data.rows"]})
                until = time.time() * 1000 + 400
                self.fake.push("alert", refusal_alert(task.id, until))

                def refused() -> bool:
                    try:
                        task.check("execute_tool get_order")
                    except tripline.TaskRefusedError:
                        return True
                    return False

                self.assertTrue(wait_until(refused))
                with self.assertRaises(tripline.TaskRefusedError) as raised:
                    task.enforce("execute_tool get_order", "get_order")
                self.assertEqual(raised.exception.code, "TASK_REFUSED")
                self.assertEqual(raised.exception.task_id, task.id)
                self.assertEqual(raised.exception.refused_until_ms, until)
                self.assertTrue(raised.exception.reason.startswith(REASON))
                self.assertFalse(task.revoked)
                # The refusal ends: the task's operations run again.
                self.assertTrue(wait_until(lambda: not refused(), timeout_s=5.0))
        finally:
            tl.shutdown()

    def test_the_check_while_disconnected_refuses_a_refusing_task(self) -> None:
        self.fake.check_answer = {
            "allowed": False,
            "reasons": [f"task t is refused calls until later: {REASON}"],
            "task": {"revoked": False, "refusing": {"reason": REASON, "untilMs": time.time() * 1000 + 60_000}},
        }
        tl = tripline.Tripline(agent_id="unit-agent", api_url=self.fake.url + "/down", install=False, ready_timeout_s=0.05)
        try:
            assert tl.guard is not None
            tl.guard._api.base = self.fake.url  # /v1/check reaches the fake; the stream URL was fixed at start
            with tl.task("customer_refund") as task:
                self.assertFalse(tl.guard.connected, "the fake answers /down/v1/stream with 404")
                with self.assertRaises(tripline.TaskRefusedError) as raised:
                    task.enforce("execute_tool get_order", "get_order")
                self.assertEqual(raised.exception.reason, REASON)
                self.assertFalse(task.revoked)
        finally:
            tl.shutdown()


if __name__ == "__main__":
    unittest.main()
