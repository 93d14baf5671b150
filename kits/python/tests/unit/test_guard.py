"""The guard against a local stand-in of Tripline's API: pushed revocations, acknowledgements, escalations,
reconnects and the request-time check while the stream is down."""

from __future__ import annotations

import asyncio
import time
import unittest

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tripline
from tripline._escalation import GuardScope

from .fake_tripline import FakeTripline, revocation, wait_until


def kit(fake: FakeTripline, **options: object) -> tripline.Tripline:
    return tripline.Tripline(agent_id="unit-agent", api_url=fake.url, token="agent-token", install=False, exporter=InMemorySpanExporter(), **options)  # type: ignore[arg-type]


class GuardTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeTripline()

    def tearDown(self) -> None:
        self.fake.stop()

    def test_snapshot_refuses_before_the_first_task(self) -> None:
        self.fake.snapshot = [("revocation", revocation("restored-task"))]
        tl = kit(self.fake)
        try:
            with self.assertRaises(tripline.TaskRevokedError) as raised:
                with tl.task("customer_refund", task_id="restored-task") as task:
                    task.check("execute_tool get_order")
            self.assertEqual(raised.exception.task_id, "restored-task")
            self.assertEqual(raised.exception.revocation_id, "a" * 32)
            self.assertEqual(raised.exception.reasons, ("novel tool http_post",))
            self.assertEqual(raised.exception.code, "TASK_REVOKED")
            self.assertTrue(wait_until(lambda: len(self.fake.acks) == 1))
            self.assertIn("agent_id=unit-agent", self.fake.stream_requests[0])
        finally:
            tl.shutdown()

    def test_live_revocation_is_refused_and_acknowledged_for_tracked_tasks_only(self) -> None:
        tl = kit(self.fake)
        try:
            with tl.task("customer_refund") as task:
                task.check("execute_tool get_order")
                self.fake.push("revocation", revocation("someone-else", "b" * 32))
                self.fake.push("revocation", revocation(task.id))
                self.assertTrue(wait_until(lambda: task.revoked))
                with self.assertRaises(tripline.TaskRevokedError) as raised:
                    task.enforce("execute_tool issue_refund", "issue_refund")
                self.assertEqual(raised.exception.operation, "execute_tool issue_refund")
            self.assertTrue(wait_until(lambda: len(self.fake.acks) == 1))
            time.sleep(0.1)
            self.assertEqual(len(self.fake.acks), 1)
            ack = self.fake.acks[0]
            self.assertEqual((ack["id"], ack["agentId"], ack["taskId"]), ("a" * 32, "unit-agent", task.id))
            self.assertAlmostEqual(ack["receivedAtMs"] / 1000, time.time(), delta=10)
            self.assertEqual(self.fake.checks, [], "no request per call while the stream is up")
        finally:
            tl.shutdown()

    def test_a_restore_lifts_the_refusal(self) -> None:
        tl = kit(self.fake)
        try:
            with tl.task("customer_refund") as task:
                revoked_at = time.time() * 1000
                self.fake.push("revocation", revocation(task.id, time_ms=revoked_at))
                self.assertTrue(wait_until(lambda: task.revoked))
                self.fake.push("revocation", revocation(task.id, "c" * 32, action="restore", time_ms=revoked_at + 1))
                self.assertTrue(wait_until(lambda: not task.revoked))
                task.check("execute_tool get_order")
        finally:
            tl.shutdown()

    def test_escalations_whole_agent_and_scoped(self) -> None:
        tl = kit(self.fake)
        try:
            until = time.time() * 1000 + 60_000
            with tl.task("customer_refund", end_user="alice") as alice, tl.task("customer_refund", end_user="bob") as bob:
                self.fake.push("escalation", {"agentId": "unit-agent", "untilMs": until, "scope": {"endUser": "alice"}})
                self.assertTrue(wait_until(lambda: self._refused(alice)))
                bob.check("execute_tool get_order")
                self.fake.push("escalation", {"agentId": "unit-agent", "untilMs": until})
                self.assertTrue(wait_until(lambda: self._refused(bob)))
                with self.assertRaises(tripline.TaskRevokedError) as raised:
                    bob.check("execute_tool get_order")
                self.assertEqual(raised.exception.revocation_id, "")
                self.assertIn("escalated", raised.exception.reason)
        finally:
            tl.shutdown()

    def test_reconnects_after_the_stream_drops(self) -> None:
        tl = kit(self.fake)
        try:
            assert tl.guard is not None
            self.assertTrue(tl.guard.ready(5))
            self.fake.drop_streams()
            self.assertTrue(wait_until(lambda: len(self.fake.stream_requests) >= 2 and self.fake.connected_streams() == 1))
            self.assertTrue(wait_until(lambda: tl.guard is not None and tl.guard.connected))
            with tl.task("customer_refund") as task:
                self.fake.push("revocation", revocation(task.id))
                self.assertTrue(wait_until(lambda: task.revoked))
        finally:
            tl.shutdown()

    @staticmethod
    def _refused(task: tripline.Task) -> bool:
        try:
            task.check("execute_tool get_order")
        except tripline.TaskRevokedError:
            return True
        return False


class WhileDisconnectedTest(unittest.TestCase):
    """Tripline unreachable: the guard never connects."""

    def setUp(self) -> None:
        fake = FakeTripline()
        self.url = fake.url
        fake.stop()
        self.errors: list[Exception] = []

    def kit(self, mode: str) -> tripline.Tripline:
        return tripline.Tripline(agent_id="unit-agent", api_url=self.url, install=False, while_disconnected=mode, ready_timeout_s=0.05, on_error=self.errors.append)  # type: ignore[arg-type]

    def test_refuse(self) -> None:
        tl = self.kit("refuse")
        try:
            with tl.task("customer_refund") as task:
                task.check("execute_tool get_order")  # local only: no refusal of its own
                with self.assertRaises(tripline.TaskRevokedError) as raised:
                    task.enforce("execute_tool get_order")
                self.assertIn("stream to Tripline is down", raised.exception.reason)
        finally:
            tl.shutdown()

    def test_allow(self) -> None:
        tl = self.kit("allow")
        try:
            with tl.task("customer_refund") as task:
                task.enforce("execute_tool get_order")
                asyncio.run(task.acheck("execute_tool get_order"))
        finally:
            tl.shutdown()

    def test_check_lets_through_and_reports_when_tripline_cannot_answer(self) -> None:
        tl = self.kit("check")
        try:
            with tl.task("customer_refund") as task:
                task.enforce("execute_tool get_order", "get_order")
                asyncio.run(task.acheck("execute_tool get_order", "get_order"))
            self.assertTrue(any(isinstance(error, tripline.TriplineUnavailableError) for error in self.errors), self.errors)
        finally:
            tl.shutdown()

    def test_invalid_mode(self) -> None:
        with self.assertRaises(ValueError):
            self.kit("maybe")


class CheckWhileDownTest(unittest.TestCase):
    """The stream is refused (HTTP 404 on /v1/stream) while /v1/check answers."""

    def test_check_asks_tripline(self) -> None:
        fake = FakeTripline()
        fake.stream_requests.clear()
        tl = tripline.Tripline(agent_id="unit-agent", api_url=fake.url + "/down", install=False, ready_timeout_s=0.05)
        try:
            assert tl.guard is not None
            tl.guard._api.base = fake.url  # /v1/check reaches the fake; the stream URL was fixed at start
            with tl.task("customer_refund") as task:
                self.assertFalse(tl.guard.connected, "the fake answers /down/v1/stream with 404")
                task.enforce("execute_tool get_order", "get_order")
                self.assertEqual(fake.checks[-1], {"taskId": task.id, "tool": "get_order"})
                fake.check_answer = {"allowed": False, "reasons": ["task revoked"], "task": {"revoked": True}}
                with self.assertRaises(tripline.TaskRevokedError) as raised:
                    asyncio.run(task.acheck("execute_tool issue_refund", "issue_refund"))
                self.assertEqual(raised.exception.reason, "task revoked")
        finally:
            tl.shutdown()
            fake.stop()


class GuardScopeTest(unittest.TestCase):
    def test_reaches(self) -> None:
        block = GuardScope(end_user="alice", conversation="c1")
        self.assertTrue(block.reaches(GuardScope("alice", "c1")))
        self.assertFalse(block.reaches(GuardScope("alice", None)))
        self.assertFalse(block.reaches(None))
        self.assertTrue(GuardScope(end_user="alice").reaches(GuardScope("alice", "c9")))


if __name__ == "__main__":
    unittest.main()
