"""Does the principal's scope cover this call? Endpoint, model, max_tokens.

Pure: called by the policy stage once the body is parsed, before any upstream
connection. A refusal names the missing scope but never echoes client text
(the model name is the client's; only the gateway's own values appear).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable

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
        and not model_allowed(principal.models, model)
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


def model_allowed(patterns: tuple[str, ...], model: str) -> bool:
    """`any(fnmatch.fnmatchcase(model, p) for p in patterns)`, as one compiled regex."""
    return _matcher(patterns)(model) is not None


@functools.lru_cache(maxsize=1024)  # one entry per distinct scope, bounded
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    if not patterns:
        return _nothing
    # fnmatch.translate anchors each pattern (`(?s:...)\Z`, no named groups): their
    # alternation matches exactly when one of them does.
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


def _nothing(model: str) -> None:
    return None
