"""The LangChain / LangGraph callback handler against a local stand-in of Tripline's API: a LangGraph ``StateGraph``
with a ``ToolNode`` and a scripted chat model, run sync and async. Once the task is revoked, its next tool call
raises ``TaskRevokedError`` out of ``graph.invoke`` without the tool running; a ``ToolNode`` that handles tool errors
does not let the run go on; tasks that are not revoked, and runs outside any task, are untouched."""

from __future__ import annotations

import asyncio
import logging
import unittest
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import Field

import tripline
from tripline.integrations.langgraph import TriplineCallbackHandler

from .fake_tripline import FakeTripline, revocation, wait_until

# LangChain logs each exception a callback raises (then raises it, `raise_error`): expected here, kept out of the output.
CALLBACK_LOGGER = logging.getLogger("langchain_core.callbacks.manager")
_logged_level = CALLBACK_LOGGER.level


def setUpModule() -> None:
    CALLBACK_LOGGER.setLevel(logging.ERROR)


def tearDownModule() -> None:
    CALLBACK_LOGGER.setLevel(_logged_level)


class ScriptedModel(BaseChatModel):
    """Calls `get_order` for each order of `orders`, one per turn, then answers. `before_turn(n)` runs first."""

    orders: list[str] = Field(default_factory=list)
    before_turn: Callable[[int], None] | None = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        made = sum(len(message.tool_calls) for message in messages if isinstance(message, AIMessage))
        if self.before_turn is not None:
            self.before_turn(made)
        if made < len(self.orders):
            call = {"name": "get_order", "args": {"order_id": self.orders[made]}, "id": f"call_{made}", "type": "tool_call"}
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content="", tool_calls=[call]))])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="done"))])


def shop(ran: list[str]) -> list[BaseTool]:
    @tool
    def get_order(order_id: str) -> str:
        """Look an order up."""
        ran.append(order_id)
        return f"order {order_id}: delivered"

    return [get_order]


def graph_of(model: ScriptedModel, tools: list[BaseTool], handle_tool_errors: bool = False) -> CompiledStateGraph[Any, Any, Any, Any]:
    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=handle_tool_errors))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile()


class Revoker:
    """Before the model's turn `at`, has the stand-in revoke the current task and waits until the guard knows."""

    def __init__(self, fake: FakeTripline, at: int) -> None:
        self.fake = fake
        self.at = at

    def __call__(self, turn: int) -> None:
        task = tripline.current_task()
        if turn != self.at or task is None:
            return
        self.fake.push("revocation", revocation(task.id))
        if not wait_until(lambda: task.revoked):
            raise AssertionError("the guard never heard of the revocation")


class CallbackHandlerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeTripline()
        self.tl = tripline.Tripline(agent_id="unit-agent", api_url=self.fake.url, install=False, exporter=InMemorySpanExporter())
        self.ran: list[str] = []

    def tearDown(self) -> None:
        self.tl.shutdown()
        self.fake.stop()

    def run_graph(self, model: ScriptedModel, handler: TriplineCallbackHandler, *, handle_tool_errors: bool = False) -> dict[str, Any]:
        config: RunnableConfig = {"callbacks": [handler]}
        with self.tl.task("customer_refund"):
            return graph_of(model, shop(self.ran), handle_tool_errors).invoke({"messages": [("user", "refund")]}, config)

    def test_refuses_the_next_tool_call_of_a_revoked_task(self) -> None:
        model = ScriptedModel(orders=["ord-1", "ord-2", "ord-3"], before_turn=Revoker(self.fake, at=1))
        with self.assertRaises(tripline.TaskRevokedError) as raised:
            self.run_graph(model, TriplineCallbackHandler())
        self.assertEqual(self.ran, ["ord-1"], "the refused tool call did not run")
        self.assertEqual(raised.exception.operation, "execute_tool get_order")
        self.assertEqual(raised.exception.revocation_id, "a" * 32)
        self.assertTrue(wait_until(lambda: len(self.fake.acks) == 1), "the guard acknowledged the revocation")

    def test_async_run(self) -> None:
        model = ScriptedModel(orders=["ord-1", "ord-2"], before_turn=Revoker(self.fake, at=1))

        async def run() -> None:
            async with self.tl.task("customer_refund"):
                await graph_of(model, shop(self.ran)).ainvoke({"messages": [("user", "refund")]}, {"callbacks": [TriplineCallbackHandler()]})

        with self.assertRaises(tripline.TaskRevokedError):
            asyncio.run(run())
        self.assertEqual(self.ran, ["ord-1"])

    def test_a_tool_node_that_handles_tool_errors_does_not_let_the_run_go_on(self) -> None:
        model = ScriptedModel(orders=["ord-1", "ord-2", "ord-3"], before_turn=Revoker(self.fake, at=1))
        with self.assertRaises(tripline.TaskRevokedError) as raised:
            self.run_graph(model, TriplineCallbackHandler(), handle_tool_errors=True)
        # The ToolNode turned the refusal into a message; the model's next call was refused.
        self.assertEqual(self.ran, ["ord-1"])
        self.assertEqual(raised.exception.operation, "chat ScriptedModel")

    def test_model_calls_may_be_left_alone(self) -> None:
        model = ScriptedModel(orders=["ord-1", "ord-2", "ord-3"], before_turn=Revoker(self.fake, at=1))
        result = self.run_graph(model, TriplineCallbackHandler(refuse_model_calls=False), handle_tool_errors=True)
        self.assertEqual(self.ran, ["ord-1"], "every tool call after the revocation was refused")
        refusals = [message for message in result["messages"] if isinstance(message, ToolMessage) and message.status == "error"]
        self.assertEqual(len(refusals), 2)
        self.assertIn("was revoked by Tripline", str(refusals[0].content))

    def test_tasks_not_revoked_and_runs_outside_a_task_are_untouched(self) -> None:
        handler = TriplineCallbackHandler()
        self.run_graph(ScriptedModel(orders=["ord-1", "ord-2"]), handler)
        graph_of(ScriptedModel(orders=["ord-3"]), shop(self.ran)).invoke({"messages": [("user", "refund")]}, {"callbacks": [handler]})
        self.assertEqual(self.ran, ["ord-1", "ord-2", "ord-3"])
        self.assertEqual(self.fake.checks, [], "no request per call while the stream is up")

    def test_a_handler_bound_to_a_task_guards_it_outside_its_context(self) -> None:
        [get_order] = shop(self.ran)
        with self.tl.task("customer_refund") as task:
            handler = TriplineCallbackHandler(task)
        self.fake.push("revocation", revocation(task.id))
        self.assertTrue(wait_until(lambda: task.revoked))
        with self.assertRaises(tripline.TaskRevokedError) as raised:
            get_order.invoke({"order_id": "ord-9"}, {"callbacks": [handler]})
        self.assertEqual(raised.exception.task_id, task.id)
        self.assertEqual(self.ran, [])

    def test_retrievals_are_refused_too(self) -> None:
        fetched: list[str] = []

        class Orders(BaseRetriever):
            def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
                fetched.append(query)
                return [Document(page_content=f"order {query}")]

        with self.tl.task("customer_refund") as task:
            Orders().invoke("ord-1", {"callbacks": [TriplineCallbackHandler()]})
            self.fake.push("revocation", revocation(task.id))
            self.assertTrue(wait_until(lambda: task.revoked))
            with self.assertRaises(tripline.TaskRevokedError) as raised:
                Orders().invoke("ord-2", {"callbacks": [TriplineCallbackHandler()]})
        self.assertEqual(fetched, ["ord-1"])
        self.assertEqual(raised.exception.operation, "retrieval Orders")


class WhileDisconnectedTest(unittest.TestCase):
    def test_tool_calls_go_through_enforce(self) -> None:
        fake = FakeTripline()
        # The stand-in answers /down/v1/stream with 404: the stream never connects.
        tl = tripline.Tripline(agent_id="unit-agent", api_url=fake.url + "/down", install=False, ready_timeout_s=0.05, while_disconnected="refuse")
        ran: list[str] = []
        try:
            with self.assertRaises(tripline.TaskRevokedError) as raised, tl.task("customer_refund"):
                graph_of(ScriptedModel(orders=["ord-1"]), shop(ran)).invoke({"messages": [("user", "refund")]}, {"callbacks": [TriplineCallbackHandler()]})
            self.assertEqual(ran, [])
            self.assertIn("stream to Tripline is down", raised.exception.reason)
        finally:
            tl.shutdown()
            fake.stop()


if __name__ == "__main__":
    unittest.main()
