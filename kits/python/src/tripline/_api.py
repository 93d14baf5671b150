"""Tripline's HTTP API as the kit uses it: start a task, lease a secret, check a task, acknowledge a revocation.

Each call has a sync and an async form over one request builder and one answer reader, so both behave alike.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ._contract import API_PREFIX, USER_AGENT
from .errors import TaskDeniedError, TaskRefusedError, TaskRevokedError, TriplineUnavailableError

#: How long a request-time check may take before the call goes through unchecked (reported).
CHECK_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class StartedTask:
    task_id: str
    token: str


@dataclass(frozen=True)
class SecretLease:
    """A secret leased for a task (``POST /v1/leases``). ``value`` appears only here."""

    lease_id: str
    secret: str
    value: str
    expires_at: str


@dataclass(frozen=True)
class TaskRequest:
    """What a task asks for when credentials are on (the policy decides; the token carries them)."""

    agent_id: str
    task_type: str
    task_id: str | None = None
    tools: Sequence[str] | None = None
    resources: Sequence[str] | None = None
    scopes: Sequence[str] | None = None
    ttl_seconds: int | None = None
    end_user: str | None = None
    conversation: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"agentId": self.agent_id, "taskType": self.task_type}
        optional: dict[str, Any] = {
            "taskId": self.task_id,
            "tools": None if self.tools is None else list(self.tools),
            "resources": None if self.resources is None else list(self.resources),
            "scopes": None if self.scopes is None else list(self.scopes),
            "ttlSeconds": self.ttl_seconds,
            "endUser": self.end_user,
            "conversation": self.conversation,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(body: Mapping[str, Any]) -> dict[str, Any]:
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def _started(request: TaskRequest, response: httpx.Response) -> StartedTask:
    body = _json(response)
    token, task_id = body.get("token"), body.get("taskId")
    if response.status_code == 201 and isinstance(token, str) and isinstance(task_id, str):
        return StartedTask(task_id=task_id, token=token)
    error = _error(body)
    if response.status_code in (403, 409):
        raw_details = error.get("details")
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
        raw_policies = details.get("policies")
        policies: list[Any] = raw_policies if isinstance(raw_policies, list) else []
        decision = details.get("decisionId")
        raise TaskDeniedError(
            str(error.get("message") or f"Tripline refused to start the {request.task_type} task"),
            code=str(error.get("code") or "POLICY_DENIED"),
            task_type=request.task_type,
            policies=[str(policy) for policy in policies],
            decision_id=decision if isinstance(decision, str) else None,
        )
    raise TriplineUnavailableError(f"POST {API_PREFIX}/tasks answered HTTP {response.status_code}: {error.get('message', '')}")


def _leased(secret: str, task_id: str, task_type: str, revocation_id: str, response: httpx.Response) -> SecretLease:
    body = _json(response)
    value, lease_id = body.get("value"), body.get("leaseId")
    if response.status_code == 201 and isinstance(value, str) and isinstance(lease_id, str):
        return SecretLease(lease_id=lease_id, secret=secret, value=value, expires_at=str(body.get("expiresAt") or ""))
    error = _error(body)
    message = str(error.get("message") or "")
    if error.get("code") == "TASK_REVOKED":
        raise TaskRevokedError(
            task_id=task_id,
            revocation_id=revocation_id,
            reason=message or "revoked",
            operation=f"lease {secret}",
            revoked_at_ms=_now_ms(),
        )
    if response.status_code == 403:
        raise TaskDeniedError(
            message or f"lease of {secret} denied",
            code=str(error.get("code") or "POLICY_DENIED"),
            task_type=task_type,
        )
    raise TriplineUnavailableError(f"POST {API_PREFIX}/leases answered HTTP {response.status_code}: {message}")


def _check_refusal(task_id: str, operation: str, response: httpx.Response) -> TaskRevokedError | TaskRefusedError | None:
    body = _json(response)
    if response.status_code >= 400:
        raise TriplineUnavailableError(f"POST {API_PREFIX}/check answered HTTP {response.status_code}: {_error(body).get('message', '')}")
    task = body.get("task")
    if isinstance(task, dict) and task.get("revoked") is True:
        reasons = body.get("reasons")
        reason = reasons[0] if isinstance(reasons, list) and reasons and isinstance(reasons[0], str) else "revoked"
        return TaskRevokedError(task_id=task_id, revocation_id="", reason=reason, operation=operation, revoked_at_ms=_now_ms())
    refusing = task.get("refusing") if isinstance(task, dict) else None
    if isinstance(refusing, dict) and isinstance(refusing.get("untilMs"), (int, float)):
        reason = refusing.get("reason")
        return TaskRefusedError(
            task_id=task_id,
            reason=reason if isinstance(reason, str) else "refused",
            operation=operation,
            refused_until_ms=float(refusing["untilMs"]),
        )
    return None


def _now_ms() -> float:
    return time.time() * 1000


class ApiClient:
    """Tripline's API at ``base`` with the agent token (``Authorization: Bearer``)."""

    def __init__(self, base: str, token: str | None, headers: Mapping[str, str] | None = None) -> None:
        self.base = base.rstrip("/")
        self.headers: dict[str, str] = {"user-agent": USER_AGENT, **(headers or {})}
        if token is not None:
            self.headers["authorization"] = f"Bearer {token}"
        self._sync: httpx.Client | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    @property
    def sync(self) -> httpx.Client:
        if self._sync is None:
            self._sync = httpx.Client(headers=self.headers, timeout=REQUEST_TIMEOUT_S)
        return self._sync

    def async_client(self) -> httpx.AsyncClient:
        """The client of the running event loop (an ``httpx.AsyncClient`` is bound to the loop it first ran on)."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = httpx.AsyncClient(headers=self.headers, timeout=REQUEST_TIMEOUT_S)
            self._async[loop] = client
        return client

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    # POST /v1/tasks
    def start_task(self, request: TaskRequest) -> StartedTask:
        try:
            response = self.sync.post(self.url(f"{API_PREFIX}/tasks"), json=request.body())
        except httpx.HTTPError as error:
            raise self._unreachable("start the task", error) from error
        return _started(request, response)

    async def astart_task(self, request: TaskRequest) -> StartedTask:
        try:
            response = await self.async_client().post(self.url(f"{API_PREFIX}/tasks"), json=request.body())
        except httpx.HTTPError as error:
            raise self._unreachable("start the task", error) from error
        return _started(request, response)

    # POST /v1/leases (with the task token: a lease belongs to the task)
    def lease(self, task_token: str, secret: str, ttl_seconds: int | None, *, task_id: str, task_type: str, revocation_id: str) -> SecretLease:
        try:
            response = self.sync.post(self.url(f"{API_PREFIX}/leases"), json=self._lease_body(secret, ttl_seconds), headers={"authorization": f"Bearer {task_token}"})
        except httpx.HTTPError as error:
            raise self._unreachable(f"lease {secret}", error) from error
        return _leased(secret, task_id, task_type, revocation_id, response)

    async def alease(self, task_token: str, secret: str, ttl_seconds: int | None, *, task_id: str, task_type: str, revocation_id: str) -> SecretLease:
        try:
            response = await self.async_client().post(self.url(f"{API_PREFIX}/leases"), json=self._lease_body(secret, ttl_seconds), headers={"authorization": f"Bearer {task_token}"})
        except httpx.HTTPError as error:
            raise self._unreachable(f"lease {secret}", error) from error
        return _leased(secret, task_id, task_type, revocation_id, response)

    # POST /v1/check: returns the refusal when Tripline says the task is revoked; raises when it cannot tell.
    def check(self, task_id: str, tool: str, operation: str) -> TaskRevokedError | TaskRefusedError | None:
        try:
            response = self.sync.post(self.url(f"{API_PREFIX}/check"), json={"taskId": task_id, "tool": tool}, timeout=CHECK_TIMEOUT_S)
        except httpx.HTTPError as error:
            raise self._unreachable("check the task", error) from error
        return _check_refusal(task_id, operation, response)

    async def acheck(self, task_id: str, tool: str, operation: str) -> TaskRevokedError | TaskRefusedError | None:
        try:
            response = await self.async_client().post(self.url(f"{API_PREFIX}/check"), json={"taskId": task_id, "tool": tool}, timeout=CHECK_TIMEOUT_S)
        except httpx.HTTPError as error:
            raise self._unreachable("check the task", error) from error
        return _check_refusal(task_id, operation, response)

    # POST /v1/revocations/{id}/ack
    def acknowledge(self, revocation_id: str, agent_id: str, task_id: str, received_at_ms: float) -> int:
        response = self.sync.post(
            self.url(f"{API_PREFIX}/revocations/{quote(revocation_id, safe='')}/ack"),
            json={"agentId": agent_id, "taskId": task_id, "receivedAtMs": received_at_ms},
        )
        return response.status_code

    @staticmethod
    def _lease_body(secret: str, ttl_seconds: int | None) -> dict[str, Any]:
        return {"secret": secret} if ttl_seconds is None else {"secret": secret, "ttlSeconds": ttl_seconds}

    def _unreachable(self, what: str, error: Exception) -> TriplineUnavailableError:
        return TriplineUnavailableError(f"Tripline's API at {self.base} cannot be reached to {what}: {error}")
