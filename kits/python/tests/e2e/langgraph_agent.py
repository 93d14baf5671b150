"""A LangGraph agent protected by the tripline kit, for the kit's end-to-end tests (test/e2e/python-kit-frameworks.test.ts).

    langgraph_agent.py --endpoint http://127.0.0.1:4318 --api http://127.0.0.1:8080 --token <agent token> \
        --agent <agent id> --plan plan.json

Set up as the kit's README says: ``tripline.Tripline(...)`` (it installs the OpenTelemetry provider that exports to
Tripline), OpenInference's LangChain instrumentation on that provider (the tool spans Tripline scores),
``TriplineCallbackHandler`` in the run's callbacks, and each run inside ``with tl.task(...)``. A scripted chat model
(no network, no weights) emits the planned tool calls in order, one ``AIMessage(tool_calls=...)`` per turn; for a
task with ``afterRevocation`` it then waits for the revocation, as a model thinking would, and calls that tool,
which the handler must refuse. A hand-built ``StateGraph`` (an ``agent`` node and a ``ToolNode``) runs the tools,
plain Python functions that record each run. Prints one line per task (plan.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from openinference.instrumentation.langchain import LangChainInstrumentor
import plan  # noqa: E402  (the sibling module: the script's folder is on sys.path)
from plan import Call, Outcome, PlannedTask, load_plan, wait_for_revocation  # the sibling module (the script's folder is on sys.path)

import tripline
from tripline.integrations.langgraph import TriplineCallbackHandler


class Script:
    """What the scripted model plays for the task running now, and what the tools recorded."""

    def __init__(self) -> None:
        self.task: PlannedTask | None = None
        self.running: tripline.Task | None = None
        self.outcome = Outcome(label="")


class ScriptedChatModel(BaseChatModel):
    """Plays the current task: its tool calls, one per turn, then (after the revocation) its last call, then an answer."""

    script: Script

    @property
    def _llm_type(self) -> str:
        return "scripted-refund-model"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        planned, running = self.script.task, self.script.running
        assert planned is not None and running is not None
        made = sum(len(message.tool_calls) for message in messages if isinstance(message, AIMessage))
        call: Call | None = planned.calls[made] if made < len(planned.calls) else None
        if call is None and planned.after_revocation is not None and made == len(planned.calls):
            self.script.outcome.waited_ms = wait_for_revocation(running)
            call = planned.after_revocation
        if call is None:
            message = AIMessage(content=f"Done: {made} tool calls.")
        else:
            message = AIMessage(content="", tool_calls=[{"name": call.tool, "args": call.args, "id": f"call_{made + 1}", "type": "tool_call"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


def make_tools(script: Script) -> list[BaseTool]:
    def ran(tool: str, **args: Any) -> None:
        script.outcome.ran.append(Call(tool=tool, args=args))

    @tool
    def get_order(order_id: str) -> dict[str, Any]:
        """Look an order up by its id."""
        ran("get_order", order_id=order_id)
        return plan.order(order_id)

    @tool
    def export_customers(limit: int = 50) -> list[dict[str, Any]]:
        """Export the customer list."""
        ran("export_customers", limit=limit)
        return plan.customers(limit)

    @tool
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Refund part or all of an order."""
        ran("issue_refund", order_id=order_id, amount=amount)
        return plan.refund(order_id, amount)

    @tool
    def http_post(url: str, body: str) -> dict[str, Any]:
        """POST a body to a URL (a stub: nothing leaves the machine)."""
        ran("http_post", url=url, body=body)
        return plan.posted(url, body)

    return [get_order, export_customers, issue_refund, http_post]


def build_graph(model: ScriptedChatModel, tools: list[BaseTool], name: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    bound = model.bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile(name=name)


def main() -> int:
    args = plan.agent_arguments()

    tl = plan.start_tripline(args)
    LangChainInstrumentor().instrument(tracer_provider=tl.tracer_provider)
    guard = TriplineCallbackHandler()
    script = Script()
    graph = build_graph(ScriptedChatModel(script=script), make_tools(script), args.agent)
    for planned in load_plan(args.plan):
        script.task, script.outcome = planned, Outcome(label=planned.label)
        config: RunnableConfig = {"callbacks": [guard], "recursion_limit": 4 * len(planned.calls) + 10}
        try:
            with tl.task(planned.task_type) as task:
                script.running, script.outcome.task_id = task, task.id
                graph.invoke({"messages": [("user", f"Handle support request ({planned.label}).")]}, config)
        except tripline.TaskRevokedError as error:
            script.outcome.refused = error
        print(script.outcome.line(), flush=True)
    tl.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
