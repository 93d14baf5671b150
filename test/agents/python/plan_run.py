"""What the OpenInference test agents (smolagents, LlamaIndex, AutoGen) share besides the shop: their command line,
the OpenTelemetry SDK exporting to Tripline, and the run of each planned task.

    agent.py --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace
             [--agent <name>] [--print-spans] [--global-provider]

Mode `wrapper` runs each task inside a span of the agent's own carrying `tripline.task.id` and `tripline.task.type`
(the user's own span around a run); mode `trace` declares the task type once, as a resource attribute, and each
task is its own trace. After each task a JSON line `{"label", "taskId", "traceId"}` goes to stdout.
`--global-provider` also makes the SDK's provider the global one (`trace.set_tracer_provider`), as most users do: a
framework that traces through the global provider (AutoGen's own spans) then exports to Tripline too.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import Tracer

from shop import RootTraceRecorder, Task, load_plan

TASK_TYPE_ATTRIBUTE = "tripline.task.type"


def read_run(default_agent: str, agent_help: str) -> tuple[argparse.Namespace, list[Task]]:
    """The command line and the plan (exits with a message when mode `trace` is given several task types)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--mode", choices=["wrapper", "trace"], default="wrapper")
    parser.add_argument("--agent", default=default_agent, help=agent_help)
    parser.add_argument("--print-spans", action="store_true", help="also write every span to stderr")
    parser.add_argument(
        "--global-provider",
        action="store_true",
        help="also make the SDK's provider the global one (trace.set_tracer_provider)",
    )
    args = parser.parse_args()
    plan = load_plan(args.plan)
    if args.mode == "trace" and len({task.task_type for task in plan}) > 1:
        sys.exit("mode trace: the task type is one per process, so every task of the plan needs the same taskType")
    return args, plan


def exporting_provider(args: argparse.Namespace, plan: list[Task], roots: RootTraceRecorder) -> TracerProvider:
    """The user's setup: an OpenTelemetry SDK exporting to Tripline with the agent token (and, for the test, the root
    span recorder and `--print-spans`)."""
    resource: dict[str, Any] = {"service.name": args.agent}
    if args.mode == "trace" and plan:
        resource[TASK_TYPE_ATTRIBUTE] = plan[0].task_type
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(roots)
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(
                endpoint=f"{args.endpoint.rstrip('/')}/v1/traces",
                headers={"authorization": f"Bearer {args.token}"},
            ),
            schedule_delay_millis=200,
        )
    )
    if args.print_spans:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider


@dataclass
class TaskRun:
    task_id: str | None
    trace_id: int | None = None


@contextmanager
def task_run(tracer: Tracer, mode: str, task: Task, index: int, roots: RootTraceRecorder) -> Iterator[TaskRun]:
    """Around one task's run (sync or async): the user's own span in mode `wrapper`, the run's own trace in mode
    `trace`; prints the task's JSON line once it ran."""
    if mode == "wrapper":
        run = TaskRun(task.task_id or f"task-{index}")
        with tracer.start_as_current_span(
            f"support ticket {index}",
            attributes={"tripline.task.id": run.task_id, TASK_TYPE_ATTRIBUTE: task.task_type},
        ) as span:
            run.trace_id = span.get_span_context().trace_id
            yield run
    else:
        run = TaskRun(None)
        roots.trace_id = None
        yield run
        if roots.trace_id is None:
            sys.exit(f"task {index} started no trace")
        run.trace_id = roots.trace_id
    print(json.dumps({"label": task.label, "taskId": run.task_id, "traceId": f"{run.trace_id:032x}"}), flush=True)


def run_agent(
    default_agent: str,
    agent_help: str,
    instrument: Callable[[TracerProvider], None],
    run_task: Callable[[Task, int, str], Awaitable[None] | None],
) -> None:
    """The agent's whole run: the command line, the SDK exporting to Tripline, the framework's instrumentation
    (`instrument`, given the provider: the one line a user adds), then each planned task (`run_task`, sync or
    async, given the task, its index and the agent's name)."""
    args, plan = read_run(default_agent, agent_help)
    roots = RootTraceRecorder()
    provider = exporting_provider(args, plan, roots)
    if args.global_provider:
        trace.set_tracer_provider(provider)
    instrument(provider)
    tracer = provider.get_tracer("support-agent")

    async def run_all() -> None:
        for index, task in enumerate(plan):
            with task_run(tracer, args.mode, task, index, roots):
                ran = run_task(task, index, args.agent)
                if inspect.isawaitable(ran):
                    await ran

    if inspect.iscoroutinefunction(run_task):
        asyncio.run(run_all())
    else:
        for index, task in enumerate(plan):
            with task_run(tracer, args.mode, task, index, roots):
                run_task(task, index, args.agent)
    provider.force_flush()
    provider.shutdown()
