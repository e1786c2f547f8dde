"""The pseudonymise stage: personal data in the request replaced per the team's policy.

A thin adapter over gateway/pii: it picks the team's modes (None = nothing on: the
stage returns before touching the body, so such a team's requests cost one dict
lookup), walks the texts the model reads with a per-request `Vault`, and leaves the
placeholder mapping on the context for the forward stage to restore in the answer.

- `block` found -> 400 invalid_request_error naming the category, never the value;
- a detector error -> 400 invalid_request_error, the request refused (fail closed), never
  sent in the clear. Not a 5xx: the same text fails the same way, so a retry (which the
  SDKs and Claude Code make on any 5xx) cannot help.
"""

from __future__ import annotations

from aiohttp import web

from gateway.context import RequestContext
from gateway.errors import InvalidRequest
from gateway.state import METRICS, PII

_NAMES = {
    "email": "an email address",
    "phone": "a phone number",
    "card": "a payment card number",
    "iban": "an IBAN",
    "national_id": "a national identifier",
    "ip": "an IP address",
    "terms": "a listed term",
    "patterns": "text matching a configured pattern",
}


async def pseudonymise_stage(request: web.Request, ctx: RequestContext) -> None:
    runtime = request.app.get(PII)
    if runtime is None or ctx.json is None or ctx.route is None:
        return
    modes = runtime.modes(ctx.principal.team if ctx.principal is not None else None)
    if modes is None:
        return
    # Here, not at the top: a gateway with no category on never loads gateway/pii's
    # detectors (its workers start no slower); once loaded this is a dict lookup.
    from gateway.pii.detect import DetectorError
    from gateway.pii.restore import Originals
    from gateway.pii.vault import Blocked, Vault, taken_placeholders
    from gateway.pii.walk import WALKERS

    walk = WALKERS.get((ctx.route.provider.name, ctx.route.endpoint.kind))
    if walk is None:
        return
    metrics = request.app[METRICS]
    vault = Vault(runtime.detectors, modes, taken_placeholders(ctx.body, ctx.json))
    try:
        walk(ctx.json, vault.replace)
    except Blocked as exc:
        metrics.pii_values.labels(exc.category, "block").inc()
        ctx.pii_counts = {exc.category: 1}
        # SECURITY: the category only; the value never appears in the message.
        raise InvalidRequest(
            f"The request contains {_NAMES[exc.category]}, which this gateway's policy "
            "does not allow to be sent to the model. Remove it and try again.",
            reason="pii_blocked",
        ) from None
    except DetectorError as exc:
        metrics.pii_errors.labels(str(exc)).inc()
        # SECURITY: fail closed: without a working detector nothing is sent.
        raise InvalidRequest(
            f"This request could not be checked for {_NAMES[str(exc)]} (the gateway's "
            "detector failed), so it was not sent to the model. Retrying will not help; "
            "tell the gateway's operators, quoting the request id.",
            reason="pii_detector",
        ) from None
    if not vault.counts:
        return
    ctx.pii_counts = vault.counts
    for category, n in vault.counts.items():
        metrics.pii_values.labels(category, modes[category]).inc(n)
    ctx.body_rewritten = True
    if vault.originals:
        ctx.pii = Originals(vault.originals)
        if runtime.settings.system_hint:
            _add_hint(ctx, runtime.hint)


def _add_hint(ctx: RequestContext, hint: str) -> None:
    doc = ctx.json
    assert doc is not None
    assert ctx.route is not None
    provider, kind = ctx.route.provider.name, ctx.route.endpoint.kind
    if provider == "anthropic":
        system = doc.get("system")
        if isinstance(system, list):
            system.append({"type": "text", "text": hint})
        else:
            doc["system"] = f"{system}\n\n{hint}" if isinstance(system, str) and system else hint
    elif kind == "chat_completions" and isinstance(doc.get("messages"), list):
        doc["messages"].insert(0, {"role": "system", "content": hint})
    elif kind == "responses":
        instructions = doc.get("instructions")
        doc["instructions"] = f"{instructions}\n\n{hint}" if instructions else hint
