"""Tripline's agent kit for Python.

    import tripline

    tl = tripline.Tripline(endpoint="http://localhost:4318", api_url="http://localhost:8080", agent_id="support-bot-1")
    with tl.task("customer_refund", tools=["get_order", "issue_refund"]) as task:
        ...                                   # every span started here carries the task; tools check it first
    tl.shutdown()

Integrations (each a few lines): ``tripline.integrations.pydantic_ai``, ``.langgraph``, ``.openai_agents``, ``.mcp``.
"""

from ._api import SecretLease
from ._approvals import CallAllowed
from ._context import TaskSpanProcessor, current_task
from ._contract import CONTRACT_VERSION, KIT_VERSION
from ._escalation import GuardScope
from ._guard import Guard
from .client import Tripline
from .errors import (
    ApprovalDeniedError,
    ApprovalError,
    ApprovalExpiredError,
    ApprovalPendingError,
    ApprovalTimeoutError,
    CallDeniedError,
    RevocationNotice,
    TaskDeniedError,
    TaskRefusedError,
    TaskRevokedError,
    TriplineError,
    TriplineUnavailableError,
)
from .guard_tool import guard_tool
from .task import Task, TaskScope

__version__ = KIT_VERSION

__all__ = [
    "ApprovalDeniedError",
    "ApprovalError",
    "ApprovalExpiredError",
    "ApprovalPendingError",
    "ApprovalTimeoutError",
    "CONTRACT_VERSION",
    "CallAllowed",
    "CallDeniedError",
    "Guard",
    "GuardScope",
    "RevocationNotice",
    "SecretLease",
    "Task",
    "TaskDeniedError",
    "TaskRefusedError",
    "TaskRevokedError",
    "TaskScope",
    "TaskSpanProcessor",
    "Tripline",
    "TriplineError",
    "TriplineUnavailableError",
    "__version__",
    "current_task",
    "guard_tool",
]
