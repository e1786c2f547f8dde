"""Where a client's credential may come from: `x-api-key` or `Authorization: Bearer`.

The official SDKs use one or the other depending on their version. A request that
carries two different credentials is refused (which one would be the caller?), and
a credential in the query string is refused outright: URLs end up in proxy logs,
browser history and shell history.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import MultiMapping

from gateway.auth.rejected import MAX_TOKEN_BYTES, Rejected

# Query parameters that carry credentials in other APIs (compared case-insensitively).
QUERY_CREDENTIALS = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "access_token",
        "id_token",
        "token",
        "auth",
        "authorization",
        "bearer",
        "jwt",
        "password",
        "secret",
    }
)


def extract(headers: MultiMapping[str], query: Mapping[str, str]) -> str | None:
    """The credential, or None when the request has none. Raises Rejected (bounded reason)."""
    for name, value in query.items():
        # SECURITY: also a gateway key or JWT under any other parameter name.
        if name.lower() in QUERY_CREDENTIALS or value.startswith(("zdr_", "eyJ")):
            raise Rejected("query_credential")
    api_keys = headers.getall("x-api-key", [])
    authz = headers.getall("authorization", [])
    if len(api_keys) > 1 or len(authz) > 1:
        raise Rejected("ambiguous_credential")
    bearer = None
    if authz:
        scheme, _, token = authz[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Rejected("malformed")
        bearer = token.strip()
    api_key = api_keys[0].strip() if api_keys else None
    if api_key is not None and bearer is not None and api_key != bearer:
        raise Rejected("ambiguous_credential")
    credential = bearer if bearer is not None else api_key
    if credential is None:
        return None
    if not credential:
        raise Rejected("malformed")
    if len(credential) > MAX_TOKEN_BYTES:
        raise Rejected("too_large")
    return credential
