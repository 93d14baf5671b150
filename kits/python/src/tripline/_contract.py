"""The public contract this kit speaks: Tripline's HTTP API version, and the span attributes it sets.

Everything the kit sends or reads is defined here, so a change of the contract is a change of this one file.
"""

from __future__ import annotations

from typing import Final

#: The version of Tripline's public HTTP API (the ``/v1/...`` routes) and span conventions this kit speaks.
CONTRACT_VERSION: Final = "1"
API_PREFIX: Final = f"/v{CONTRACT_VERSION}"

KIT_VERSION: Final = "0.1.0"
USER_AGENT: Final = f"tripline-python/{KIT_VERSION} (contract v{CONTRACT_VERSION})"

# Span attributes (schemas/conventions.md).
TASK_ID: Final = "tripline.task.id"
TASK_TYPE: Final = "tripline.task.type"
TASK_ROOT: Final = "tripline.task.root"
AGENT_ID: Final = "gen_ai.agent.id"
AGENT_NAME: Final = "gen_ai.agent.name"
END_USER: Final = "enduser.id"
CONVERSATION: Final = "gen_ai.conversation.id"
SERVICE_NAME: Final = "service.name"
ERROR_TYPE: Final = "error.type"
EVENT_KIND: Final = "tripline.event.kind"

GEN_AI_OPERATION: Final = "gen_ai.operation.name"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
TOOL_SIDE_EFFECT: Final = "tripline.tool.side_effect"
TOOL_TARGET: Final = "tripline.tool.target"

MCP_METHOD: Final = "mcp.method.name"
MCP_TOOL_NAME: Final = "mcp.tool.name"
MCP_RESOURCE_URI: Final = "mcp.resource.uri"

#: The event on the task span that records an operation the guard refused (it never ran, so it has no span).
OPERATION_REFUSED_EVENT: Final = "tripline.operation_refused"
