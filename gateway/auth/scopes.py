"""Does the principal's scope cover this call? Endpoint, model, max_tokens.

Pure: called by the policy stage once the body is parsed, before any upstream
connection. A refusal names the missing scope but never echoes client text
(the model name is the client's; only the gateway's own values appear).
"""

from __future__ import annotations

import fnmatch

from gateway.auth.principal import Principal
from gateway.errors import PermissionDenied


def check(
    principal: Principal,
    endpoint: str,
    model: str | None,
    max_tokens: int | None,
    clamp: bool = False,
) -> int | None:
    """The max_tokens to send (clamped to the ceiling when `clamp`), or raises PermissionDenied."""
    if principal.endpoints is not None and endpoint not in principal.endpoints:
        raise PermissionDenied(
            f"This key may not call the {endpoint} endpoint (missing scope: endpoint {endpoint}).",
            reason="scope_endpoint",
        )
    if (
        model is not None
        and principal.models is not None
        and not any(fnmatch.fnmatchcase(model, p) for p in principal.models)
    ):
        allowed = ", ".join(principal.models) or "none"
        raise PermissionDenied(
            f"This key may not use the requested model (missing scope: model; allowed: {allowed}).",
            reason="scope_model",
        )
    ceiling = principal.max_tokens
    if ceiling is not None and max_tokens is not None and max_tokens > ceiling:
        if clamp:
            return ceiling
        raise PermissionDenied(
            f"max_tokens exceeds this key's ceiling of {ceiling} (missing scope: max_tokens).",
            reason="scope_max_tokens",
        )
    return max_tokens
