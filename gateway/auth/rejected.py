"""`Rejected`, and the bounds a credential is checked against before it is parsed.

Kept apart from `tokens` so that what every request touches (the auth stage, the
credential extraction) imports neither PyJWT nor cryptography: with auth off and
no keys configured, the gateway never loads them (~9 MiB resident).
"""

from __future__ import annotations

PREFIX = "zdr_"
# SECURITY: checked before any decoding, so a huge header cannot cost memory or CPU.
# Below aiohttp's 8190-byte header-line limit, so an oversized credential meets the
# gateway's own generic 401 rather than the HTTP parser's 400 (which quotes the line).
MAX_TOKEN_BYTES = 6 * 1024


# Every reason a credential is refused for: the bounded label set of
# zdr_gateway_auth_failures_total, exported at 0 from start-up (tests/auth check that
# each `Rejected(...)` in the source names one of these).
REASONS = frozenset(
    {
        "ambiguous_credential",
        "bad_algorithm",
        "bad_claims",
        "bad_signature",
        "expired",
        "malformed",
        "missing",
        "no_grant",
        "not_yet_valid",
        "query_credential",
        "revoked",
        "too_large",
        "unknown_issuer",
        "unknown_kid",
        "wrong_audience",
        "wrong_issuer",
    }
)


class Rejected(Exception):
    """A credential was refused. `reason` is a bounded label, safe for metrics and audit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
