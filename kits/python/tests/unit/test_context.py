"""The task context: the task span, the attributes every span inside a task carries, baggage, ``current_task``
across asyncio tasks and threads, and ``guard_tool``."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import unittest

from opentelemetry import baggage
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import tripline


class ContextTest(unittest.TestCase):
    def setUp(self) -> None:
        self.exported = InMemorySpanExporter()
        self.tl = tripline.Tripline(agent_id="unit-agent", install=False)
        # Synchronous export for the test: spans are readable as soon as they end.
        self.tl.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exported))
        self.tracer = self.tl.tracer_provider.get_tracer("framework")

    def tearDown(self) -> None:
        self.tl.shutdown()

    def spans(self) -> dict[str, ReadableSpan]:
        return {span.name: span for span in self.exported.get_finished_spans()}

    def test_task_span_and_attributes_on_every_span_inside(self) -> None:
        self.assertIsNone(tripline.current_task())
        with self.tl.task("customer_refund", end_user="alice", conversation="conv-1") as task:
            self.assertIs(tripline.current_task(), task)
            self.assertEqual(baggage.get_baggage("tripline.task.id"), task.id)
            self.assertEqual(baggage.get_baggage("tripline.task.type"), "customer_refund")
            with self.tracer.start_as_current_span("execute_tool get_order"):
                pass
        self.assertIsNone(tripline.current_task())
        spans = self.spans()
        root, tool = spans["task customer_refund"], spans["execute_tool get_order"]
        self.assertIsNone(root.parent)
        self.assertEqual(root.attributes["tripline.task.root"], True)
        self.assertEqual(root.status.status_code, StatusCode.OK)
        for span in (root, tool):
            attributes = span.attributes or {}
            self.assertEqual(attributes["tripline.task.id"], task.id)
            self.assertEqual(attributes["tripline.task.type"], "customer_refund")
            self.assertEqual(attributes["gen_ai.agent.id"], "unit-agent")
            self.assertEqual(attributes["enduser.id"], "alice")
            self.assertEqual(attributes["gen_ai.conversation.id"], "conv-1")
        self.assertEqual(tool.parent.span_id if tool.parent else None, root.context.span_id)
        self.assertNotIn("tripline.task.root", tool.attributes or {})

    def test_each_task_is_a_trace_of_its_own_even_inside_another_span(self) -> None:
        with self.tracer.start_as_current_span("http request") as outer, self.tl.task("customer_refund"):
            pass
        root = self.spans()["task customer_refund"]
        self.assertIsNone(root.parent)
        self.assertNotEqual(root.context.trace_id, outer.get_span_context().trace_id)
        self.assertNotIn("tripline.task.id", self.spans()["http request"].attributes or {})

    def test_error_marks_the_task_span(self) -> None:
        with self.assertRaises(KeyError), self.tl.task("customer_refund"):
            raise KeyError("order")
        root = self.spans()["task customer_refund"]
        self.assertEqual(root.status.status_code, StatusCode.ERROR)
        self.assertEqual((root.attributes or {})["error.type"], "KeyError")

    def test_async_tasks_and_threads_see_the_task(self) -> None:
        seen: dict[str, tripline.Task | None] = {}

        async def agent() -> tripline.Task:
            async with self.tl.task("customer_refund") as task:

                async def child() -> None:
                    seen["asyncio"] = tripline.current_task()

                await asyncio.create_task(child())
                thread = threading.Thread(target=contextvars.copy_context().run, args=(lambda: seen.__setitem__("thread", tripline.current_task()),))
                thread.start()
                thread.join()
                return task

        task = asyncio.run(agent())
        self.assertIs(seen["asyncio"], task)
        self.assertIs(seen["thread"], task)

    def test_baggage_from_a_caller_is_copied_outside_a_task(self) -> None:
        from opentelemetry import context

        token = context.attach(baggage.set_baggage("tripline.task.id", "upstream-task"))
        try:
            with self.tracer.start_as_current_span("downstream"):
                pass
        finally:
            context.detach(token)
        self.assertEqual((self.spans()["downstream"].attributes or {})["tripline.task.id"], "upstream-task")

    def test_guard_tool_passes_through_without_a_guard_and_keeps_the_signature(self) -> None:
        @tripline.guard_tool
        def get_order(order_id: str) -> str:
            """Look an order up."""
            return order_id

        @tripline.guard_tool(name="refund")
        async def issue_refund(order_id: str, amount: float) -> float:
            return amount

        with self.tl.task("customer_refund"):
            self.assertEqual(get_order("ord-1"), "ord-1")
            self.assertEqual(asyncio.run(issue_refund("ord-1", 5.0)), 5.0)
        self.assertEqual(get_order.__name__, "get_order")
        self.assertEqual(get_order.__doc__, "Look an order up.")
        self.assertEqual(get_order("outside"), "outside")

    def test_credentials_need_the_api(self) -> None:
        with self.assertRaises(ValueError):
            tripline.Tripline(agent_id="unit-agent", install=False, credentials=True)

    def test_lease_needs_credentials(self) -> None:
        with self.tl.task("customer_refund") as task, self.assertRaises(TypeError):
            task.lease("payments-api-key")


if __name__ == "__main__":
    unittest.main()
