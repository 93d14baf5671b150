"""``guard_tool``: a plain sync or async callable that checks the current task before it runs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast, overload

from ._context import current_task

F = TypeVar("F", bound=Callable[..., Any])


@overload
def guard_tool(fn: F, name: str | None = None) -> F: ...


@overload
def guard_tool(fn: None = None, name: str | None = None) -> Callable[[F], F]: ...


def guard_tool(fn: F | None = None, name: str | None = None) -> F | Callable[[F], F]:
    """Wraps a tool so each call first checks the current task (``tripline.current_task()``): once the task is
    revoked, the call raises ``TaskRevokedError`` and the tool does not run. Outside a task the tool runs as is.

    ``@guard_tool``, ``@guard_tool(name="refund")`` or ``guard_tool(fn)``. A sync tool uses ``task.enforce`` (a
    request to Tripline only while the revocation stream is down), an async one ``await task.acheck``. The wrapper
    keeps the tool's name, docstring and signature (``functools.wraps``), so frameworks read its schema as before.
    """
    if fn is None:
        return lambda inner: guard_tool(inner, name)
    tool = name or getattr(fn, "__name__", "tool")
    operation = f"execute_tool {tool}"

    if inspect.iscoroutinefunction(fn):
        coroutine = cast(Callable[..., Awaitable[Any]], fn)

        @functools.wraps(fn)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            task = current_task()
            if task is not None:
                await task.acheck(operation, tool)
            return await coroutine(*args, **kwargs)

        return cast(F, guarded_async)

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        task = current_task()
        if task is not None:
            task.enforce(operation, tool)
        return fn(*args, **kwargs)

    return cast(F, guarded)
