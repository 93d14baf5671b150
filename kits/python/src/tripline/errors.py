"""Typed errors of the kit. Agents catch them by class (``except TaskRevokedError``) or by ``code``.

The codes are the ones of the TypeScript helpers and of Tripline's API (docs/kill-switch.md, "Error codes").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class RevocationNotice:
    """What Tripline sent about a revocation (the ``revocation`` server-sent event)."""

    id: str
    task_id: str
    task_type: str
    agent_id: str
    action: Literal["revoke", "restore"]
    source: Literal["detector", "manual"]
    actor: str
    reason: str
    reasons: tuple[str, ...] = field(default_factory=tuple)
    score: float = 0.0
    time_ms: float = 0.0


class TriplineError(Exception):
    """Base of the kit's errors; ``code`` is stable (``TASK_REVOKED``, ``POLICY_DENIED``, ...)."""

    code: str = "TRIPLINE_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class TaskRevokedError(TriplineError):
    """Raised instead of running a tool call (or another operation) of a task Tripline has revoked.

    The operation did not run. The task's credentials are dead; a person may restore the task.
    ``revocation_id`` is the revocation's id (``GET /v1/revocations/{id}``), or ``""`` for an escalation or an
    answer of ``POST /v1/check``.
    """

    code = "TASK_REVOKED"

    def __init__(
        self,
        *,
        task_id: str,
        revocation_id: str,
        reason: str,
        operation: str,
        revoked_at_ms: float,
        reasons: Sequence[str] = (),
    ) -> None:
        super().__init__(f"task {task_id} was revoked by Tripline ({reason}); refused {operation}")
        self.task_id = task_id
        self.revocation_id = revocation_id
        self.reason = reason
        self.reasons: tuple[str, ...] = tuple(reasons)
        self.operation = operation
        self.revoked_at_ms = revoked_at_ms


class TaskRefusedError(TriplineError):
    """Raised instead of running an operation of a task that a loop or rate limit refuses for a while.

    Tripline's ``refuse`` step (docs/loops.md): the task repeated one call, cycled through the same tools, or called
    too fast. The operation did not run; the task is not revoked: after ``refused_until_ms`` its calls run again (a
    task that keeps looping is then revoked).
    """

    code = "TASK_REFUSED"

    def __init__(self, *, task_id: str, reason: str, operation: str, refused_until_ms: float) -> None:
        super().__init__(f"task {task_id} is refused calls for a while ({reason}); refused {operation}")
        self.task_id = task_id
        self.reason = reason
        self.operation = operation
        self.refused_until_ms = refused_until_ms


class TaskDeniedError(TriplineError):
    """Tripline refused to start the task or lease (HTTP 403): nothing was issued and nothing ran.

    ``code`` is ``POLICY_DENIED``, ``AGENT_BLOCKED`` or ``TASK_REVOKED``; ``policies`` are the policies that
    decided (empty: no policy permits it, default deny).
    """

    code = "POLICY_DENIED"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        task_type: str,
        policies: Sequence[str] = (),
        decision_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.task_type = task_type
        self.policies: tuple[str, ...] = tuple(policies)
        self.decision_id = decision_id


class TriplineUnavailableError(TriplineError):
    """Tripline's API could not be reached or answered unexpectedly (not a decision)."""

    code = "TRIPLINE_UNAVAILABLE"


class CallDeniedError(TriplineError):
    """``POST /v1/check`` denied the call (no approval can change that): the call did not run."""

    code = "CALL_DENIED"

    def __init__(self, *, tool: str, reasons: Sequence[str], policies: Sequence[str], decision_id: str) -> None:
        super().__init__(f"Tripline denied the call to {tool}: {'; '.join(reasons) or 'no reason given'}")
        self.tool = tool
        self.reasons: tuple[str, ...] = tuple(reasons)
        self.policies: tuple[str, ...] = tuple(policies)
        self.decision_id = decision_id


class ApprovalError(TriplineError):
    """Base of the approval errors (docs/approvals.md): the call waits for, or was refused by, a person."""

    def __init__(self, message: str, *, approval_id: str, tool: str) -> None:
        super().__init__(message)
        self.approval_id = approval_id
        self.tool = tool


class ApprovalPendingError(ApprovalError):
    """The call waits for a person's approval and the caller chose not to wait (``on_pending="fail"``)."""

    code = "APPROVAL_PENDING"

    def __init__(self, *, approval_id: str, tool: str, url: str, expires_at: str, reasons: Sequence[str]) -> None:
        super().__init__(
            f"the call to {tool} waits for a person's approval {approval_id} ({'; '.join(reasons)}); {url}",
            approval_id=approval_id,
            tool=tool,
        )
        self.url = url
        self.expires_at = expires_at


class ApprovalDeniedError(ApprovalError):
    """A person denied the call: it did not run, and the same call is denied until the approval's expiry."""

    code = "APPROVAL_DENIED"

    def __init__(self, *, approval_id: str, tool: str, decided_by: str, reason: str) -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(
            f"{decided_by or 'a person'} denied the call to {tool} (approval {approval_id}){detail}",
            approval_id=approval_id,
            tool=tool,
        )
        self.decided_by = decided_by
        self.reason = reason


class ApprovalExpiredError(ApprovalError):
    """Nobody decided (or the approved call was not made) before the approval expired: the call did not run."""

    code = "APPROVAL_EXPIRED"

    def __init__(self, *, approval_id: str, tool: str, expires_at: str) -> None:
        super().__init__(f"approval {approval_id} of the call to {tool} expired at {expires_at}", approval_id=approval_id, tool=tool)
        self.expires_at = expires_at


class ApprovalTimeoutError(ApprovalError):
    """The caller's wait (``timeout_s``) ended before a person decided: the call did not run."""

    code = "APPROVAL_TIMEOUT"

    def __init__(self, *, approval_id: str, tool: str, waited_s: float) -> None:
        super().__init__(
            f"no decision on approval {approval_id} of the call to {tool} within {waited_s:.1f} s",
            approval_id=approval_id,
            tool=tool,
        )
        self.waited_s = waited_s
