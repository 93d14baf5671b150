"""Request-time checks with approval points (docs/approvals.md).

Before a call, ``POST /v1/check`` with its tool, resource and arguments. ``allow`` lets it run; ``deny`` raises
``CallDeniedError``; ``pending`` means a person must approve this exact call first: the kit waits (polls
``GET /v1/approvals/{id}/status`` with the task token, bounded by ``timeout_s``) and checks again once it is
approved, or raises ``ApprovalPendingError`` at once (``on_pending="fail"``). A denial, an expiry and the end of the
wait raise ``ApprovalDeniedError``, ``ApprovalExpiredError`` and ``ApprovalTimeoutError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from ._api import ApiClient
from ._contract import API_PREFIX
from .errors import (
    ApprovalDeniedError,
    ApprovalExpiredError,
    ApprovalPendingError,
    ApprovalTimeoutError,
    CallDeniedError,
    TaskRevokedError,
    TriplineUnavailableError,
)

OnPending = Literal["wait", "fail"]


@dataclass(frozen=True)
class CallCheck:
    """What ``Task.check_call`` asks: the call, and what to do at an approval point."""

    tool: str
    arguments: Mapping[str, Any] | None = None
    resource: str | None = None
    side_effect: Literal["read", "write", "destructive"] | None = None
    on_pending: OnPending = "wait"
    timeout_s: float = 300.0
    poll_interval_s: float = 1.0


@dataclass(frozen=True)
class CallAllowed:
    """The call may run. ``approval_id``: the approval that let it through, when one did."""

    decision_id: str
    approval_id: str | None
    reasons: tuple[str, ...]


class _Flow:
    """One check's state between the requests (the same for the sync and the async form)."""

    def __init__(self, check: CallCheck, task_id: str, token: str | None) -> None:
        self.check, self.task_id, self.token = check, task_id, token
        self.started = time.monotonic()
        self.approval_id = ""

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"tool": self.check.tool}
        body.update({"token": self.token} if self.token is not None else {"taskId": self.task_id})
        if self.check.resource is not None:
            body["resource"] = self.check.resource
        if self.check.side_effect is not None:
            body["sideEffect"] = self.check.side_effect
        if self.check.arguments is not None:
            body["arguments"] = dict(self.check.arguments)
        return body

    def status_url(self, api: ApiClient) -> str:
        return api.url(f"{API_PREFIX}/approvals/{quote(self.approval_id, safe='')}/status")

    def status_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def answer(self, response: httpx.Response) -> dict[str, Any]:
        body = _json(response)
        if response.status_code != 200 or "decision" not in body:
            message = body.get("error", {}).get("message", "") if isinstance(body.get("error"), dict) else ""
            raise TriplineUnavailableError(f"POST {API_PREFIX}/check answered HTTP {response.status_code}: {message}")
        return body

    def first(self, answer: dict[str, Any]) -> CallAllowed | None:
        """After the first check: allowed, or None to wait; raises for a refusal or a pending call not waited for."""
        if answer["decision"] == "allow":
            return _allowed(answer)
        approval_id = answer.get("approvalId")
        if answer["decision"] != "pending" or not isinstance(approval_id, str):
            raise self.refusal(answer)
        self.approval_id = approval_id
        if self.check.on_pending == "fail":
            approval = answer.get("approval") if isinstance(answer.get("approval"), dict) else {}
            raise ApprovalPendingError(
                approval_id=approval_id,
                tool=self.check.tool,
                url=str(approval.get("url", "")),
                expires_at=str(approval.get("expiresAt", "")),
                reasons=_strings(answer.get("reasons")),
            )
        if self.token is None:
            raise TypeError("waiting for an approval needs the task token (Tripline(credentials=True))")
        return None

    def sleep_s(self) -> float:
        """How long to sleep before the next poll; raises ApprovalTimeoutError when the wait is over."""
        waited = time.monotonic() - self.started
        if waited >= self.check.timeout_s:
            raise ApprovalTimeoutError(approval_id=self.approval_id, tool=self.check.tool, waited_s=waited)
        return min(max(0.01, self.check.poll_interval_s), self.check.timeout_s - waited)

    def polled(self, response: httpx.Response) -> bool:
        """After a poll: False to keep waiting, True to check again (approved); raises on denial or expiry."""
        body = _json(response)
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        if error.get("code") == "TASK_REVOKED":  # revoked while it waited: its token no longer reads anything
            raise TaskRevokedError(
                task_id=self.task_id,
                revocation_id="",
                reason=str(error.get("message") or "revoked"),
                operation=f"call {self.check.tool}",
                revoked_at_ms=time.time() * 1000,
            )
        if response.status_code != 200:
            raise TriplineUnavailableError(f"GET approval {self.approval_id} answered HTTP {response.status_code}")
        status = body.get("status")
        if status == "pending":
            return False
        if status == "denied":
            raise ApprovalDeniedError(
                approval_id=self.approval_id,
                tool=self.check.tool,
                decided_by=str(body.get("decidedBy") or ""),
                reason=str(body.get("decisionReason") or ""),
            )
        if status == "expired":
            raise ApprovalExpiredError(approval_id=self.approval_id, tool=self.check.tool, expires_at=str(body.get("expiresAt") or ""))
        return True

    def again(self, answer: dict[str, Any]) -> CallAllowed | None:
        """After the check that follows an approval: allowed, None to keep waiting, or a refusal."""
        if answer["decision"] == "allow":
            return _allowed(answer)
        if answer["decision"] == "pending" and answer.get("approvalId") == self.approval_id:
            return None
        if answer["decision"] == "pending":
            raise ApprovalExpiredError(approval_id=self.approval_id, tool=self.check.tool, expires_at="")
        raise self.refusal(answer)

    def refusal(self, answer: dict[str, Any]) -> Exception:
        task = answer.get("task")
        reasons = _strings(answer.get("reasons"))
        if isinstance(task, dict) and task.get("revoked") is True:
            return TaskRevokedError(
                task_id=self.task_id,
                revocation_id="",
                reason=reasons[0] if reasons else "revoked",
                reasons=reasons,
                operation=f"call {self.check.tool}",
                revoked_at_ms=time.time() * 1000,
            )
        return CallDeniedError(
            tool=self.check.tool,
            reasons=reasons,
            policies=_strings(answer.get("policies")),
            decision_id=str(answer.get("decisionId") or ""),
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _allowed(answer: dict[str, Any]) -> CallAllowed:
    approval_id = answer.get("approvalId")
    return CallAllowed(
        decision_id=str(answer.get("decisionId") or ""),
        approval_id=approval_id if isinstance(approval_id, str) else None,
        reasons=_strings(answer.get("reasons")),
    )


def _unreachable(api: ApiClient, error: Exception) -> TriplineUnavailableError:
    return TriplineUnavailableError(f"Tripline's API at {api.base} cannot be reached to check a call: {error}")


def check_call(api: ApiClient, task_id: str, token: str | None, check: CallCheck) -> CallAllowed:
    """Checks one call; returns when it may run, raises a typed error when it may not (see the module)."""
    flow = _Flow(check, task_id, token)
    try:
        allowed = flow.first(flow.answer(api.sync.post(api.url(f"{API_PREFIX}/check"), json=flow.body())))
        while allowed is None:
            time.sleep(flow.sleep_s())
            if flow.polled(api.sync.get(flow.status_url(api), headers=flow.status_headers())):
                allowed = flow.again(flow.answer(api.sync.post(api.url(f"{API_PREFIX}/check"), json=flow.body())))
        return allowed
    except httpx.HTTPError as error:
        raise _unreachable(api, error) from error


async def acheck_call(api: ApiClient, task_id: str, token: str | None, check: CallCheck) -> CallAllowed:
    """The async ``check_call``."""
    flow = _Flow(check, task_id, token)
    client = api.async_client()
    try:
        allowed = flow.first(flow.answer(await client.post(api.url(f"{API_PREFIX}/check"), json=flow.body())))
        while allowed is None:
            await asyncio.sleep(flow.sleep_s())
            if flow.polled(await client.get(flow.status_url(api), headers=flow.status_headers())):
                allowed = flow.again(flow.answer(await client.post(api.url(f"{API_PREFIX}/check"), json=flow.body())))
        return allowed
    except httpx.HTTPError as error:
        raise _unreachable(api, error) from error
