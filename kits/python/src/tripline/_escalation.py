"""The escalations an agent heard of: the whole agent's block, and blocks scoped to an end user or conversation.

A scoped block reaches a task only when the task was tracked with every field the block sets, with its value
(docs/kill-switch.md, "Blast radius and escalation"); a block without a scope reaches every task of the agent.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

#: Most scoped escalations and task scopes kept (the oldest dropped first), as the TypeScript guard.
MAX_SCOPED_BLOCKS = 64
MAX_TASK_SCOPES = 10_000


@dataclass(frozen=True)
class GuardScope:
    """The end user and conversation a task acts for (``enduser.id``, ``gen_ai.conversation.id``)."""

    end_user: str | None = None
    conversation: str | None = None

    def empty(self) -> bool:
        return self.end_user is None and self.conversation is None

    def describe(self) -> str:
        parts = ([f"end user {self.end_user}"] if self.end_user is not None else []) + (
            [f"conversation {self.conversation}"] if self.conversation is not None else []
        )
        return ", ".join(parts)

    def reaches(self, task: GuardScope | None) -> bool:
        """Whether this (a block's scope) reaches a task tracked with ``task``."""
        if task is None:
            return False
        if self.end_user is not None and task.end_user != self.end_user:
            return False
        return self.conversation is None or task.conversation == self.conversation


@dataclass(frozen=True)
class _ScopedBlock:
    scope: GuardScope
    until_ms: float
    reason: str


def _now_ms() -> float:
    return time.time() * 1000


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def scope_of(value: Any) -> GuardScope | None:
    """The scope of an escalation event; None when it names none (the whole agent)."""
    if not isinstance(value, Mapping):
        return None
    end_user, conversation = value.get("endUser"), value.get("conversation")
    scope = GuardScope(
        end_user=end_user if isinstance(end_user, str) and end_user != "" else None,
        conversation=conversation if isinstance(conversation, str) and conversation != "" else None,
    )
    return None if scope.empty() else scope


class EscalationBlocks:
    """Not thread-safe on its own: the guard calls it under its lock."""

    def __init__(self, agent_id: str) -> None:
        self._agent_id = agent_id
        self._agent_until_ms = 0.0
        self._agent_reason = ""
        self._scoped: list[_ScopedBlock] = []
        self._task_scopes: OrderedDict[str, GuardScope] = OrderedDict()

    def apply(self, data: Mapping[str, Any]) -> None:
        until = data.get("untilMs")
        until_ms = float(until) if isinstance(until, (int, float)) and not isinstance(until, bool) else 0.0
        scope = scope_of(data.get("scope"))
        if scope is None:
            # No scope (or an older Tripline's escalation): the whole agent.
            self._agent_until_ms = max(self._agent_until_ms, until_ms)
            self._agent_reason = f"agent {self._agent_id} was escalated after repeated revocations, until {_iso(until_ms)}"
            return
        reason = f"agent {self._agent_id} was escalated for {scope.describe()} after repeated revocations, until {_iso(until_ms)}"
        now = _now_ms()
        self._scoped = [block for block in self._scoped if block.until_ms > now] + [_ScopedBlock(scope, until_ms, reason)]
        self._scoped = self._scoped[-MAX_SCOPED_BLOCKS:]

    def track(self, task_id: str, scope: GuardScope | None) -> None:
        if scope is None or scope.empty():
            return
        self._task_scopes.pop(task_id, None)
        self._task_scopes[task_id] = scope
        if len(self._task_scopes) > MAX_TASK_SCOPES:
            self._task_scopes.popitem(last=False)

    def block_of(self, task_id: str) -> tuple[float, str]:
        """Until when the task may not proceed (0 or past: it may), and why."""
        now = _now_ms()
        task = self._task_scopes.get(task_id)
        scoped = next((block for block in self._scoped if block.until_ms > now and block.scope.reaches(task)), None)
        until = max(self._agent_until_ms, scoped.until_ms if scoped is not None else 0.0)
        reason = self._agent_reason if self._agent_until_ms > now or scoped is None else scoped.reason
        return until, reason
