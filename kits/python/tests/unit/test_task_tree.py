"""Task trees: a task started inside another task, or from a request whose W3C baggage names a task, is that task's
child (``tripline.task.parent_id`` on every span of it); ``task.propagation_headers()`` carries the task's id."""

from __future__ import annotations

import unittest

from opentelemetry import baggage
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tripline

PARENT = "tripline.task.parent_id"


class TaskTreeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.exported = InMemorySpanExporter()
        self.tl = tripline.Tripline(agent_id="tree-agent", install=False)
        self.tl.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exported))
        self.tracer = self.tl.tracer_provider.get_tracer("framework")

    def tearDown(self) -> None:
        self.tl.shutdown()

    def spans(self) -> dict[str, ReadableSpan]:
        return {span.name: span for span in self.exported.get_finished_spans()}

    def test_a_task_alone_has_no_parent(self) -> None:
        with self.tl.task("orchestrate") as task:
            self.assertIsNone(task.parent_id)
            self.assertIsNone(baggage.get_baggage(PARENT))
        self.assertNotIn(PARENT, self.spans()["task orchestrate"].attributes or {})

    def test_a_task_started_inside_another_is_its_child_on_every_span(self) -> None:
        with self.tl.task("orchestrate") as parent:
            with self.tl.task("summarize") as child:
                self.assertEqual(child.parent_id, parent.id)
                self.assertEqual(baggage.get_baggage(PARENT), parent.id)
                with self.tracer.start_as_current_span("execute_tool read"):
                    pass
            # Back in the parent: its own context again.
            self.assertIs(tripline.current_task(), parent)
            self.assertIsNone(baggage.get_baggage(PARENT))
        spans = self.spans()
        for name in ("task summarize", "execute_tool read"):
            self.assertEqual((spans[name].attributes or {})[PARENT], parent.id, name)
        self.assertNotIn(PARENT, spans["task orchestrate"].attributes or {})

    def test_the_parent_travels_in_w3c_baggage_to_a_task_started_from_the_request(self) -> None:
        with self.tl.task("orchestrate") as parent:
            headers = parent.propagation_headers()
        self.assertIn("traceparent", headers)
        self.assertIn(f"tripline.task.id={parent.id}", headers["baggage"])
        # The sub-agent's server: another process, no task current; the request's headers name the parent.
        with self.tl.task("subtask", incoming_headers={"Baggage": headers["baggage"]}) as child:
            self.assertEqual(child.parent_id, parent.id)
            # Its own id now travels on: a grandchild would name the child.
            self.assertIn(f"tripline.task.id={child.id}", child.propagation_headers()["baggage"])
        self.assertEqual((self.spans()["task subtask"].attributes or {})[PARENT], parent.id)

    def test_explicit_parent_wins_and_empty_means_none(self) -> None:
        with self.tl.task("orchestrate"):
            with self.tl.task("a", parent_id="elsewhere-1") as named:
                self.assertEqual(named.parent_id, "elsewhere-1")
            with self.tl.task("b", parent_id="") as alone:
                self.assertIsNone(alone.parent_id)

    def test_a_task_is_never_its_own_parent(self) -> None:
        with self.tl.task("orchestrate", task_id="t-1"):
            with self.tl.task("again", task_id="t-1") as same:
                self.assertIsNone(same.parent_id)

    def test_baggage_without_a_task_gives_no_parent(self) -> None:
        with self.tl.task("subtask", incoming_headers={"baggage": "other=1"}) as task:
            self.assertIsNone(task.parent_id)


if __name__ == "__main__":
    unittest.main()
