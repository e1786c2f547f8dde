"""`zdr-gateway keys init|issue|inspect|revoke`: the key lifecycle from a terminal.

`issue` prints the key, and only the key, on stdout (so `KEY=$(zdr-gateway keys
issue …)` works); everything else goes to stderr. `inspect` never prints the key.

`serve` registers these subcommands too: PyJWT and `tokens` are imported by the
commands that use them, so that registering them does not load them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.auth.keyset import KeyLoadError, kid_of, load_private_key, write_key_pair
from gateway.auth.principal import Limits
from gateway.auth.revocation import RedisRevocations, Revocations, revoke
from gateway.config import Config, ConfigError, load

DEFAULT_ENDPOINTS = "messages,count_tokens,models"
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_WHY = {
    "expired": "expired",
    "not_yet_valid": "not valid yet (nbf in the future)",
    "unknown_kid": "signed with a key id this config does not list (unknown or retired)",
    "bad_signature": "signature does not verify with the configured public key",
    "bad_algorithm": "not signed with EdDSA",
    "revoked": "revoked",
    "wrong_audience": "wrong audience",
    "wrong_issuer": "wrong issuer",
    "too_large": "too large",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create signing keys; issue, inspect and revoke keys")
    ks = keys.add_subparsers(dest="keys_command", required=True)

    p = ks.add_parser("init", help="a new Ed25519 signing key pair")
    p.add_argument("--out", required=True, help="directory for KID.key.pem and KID.pub.pem")
    p.add_argument("--kid", required=True, help="key id, e.g. 2026-11")
    p.set_defaults(func=cmd_init)

    p = ks.add_parser("issue", help="issue a scoped key (printed once, on stdout)")
    p.add_argument("--signing-key", required=True, help="DIR/KID.key.pem from `keys init`")
    p.add_argument("--kid", help="key id of the signing key (default: from the file name)")
    p.add_argument("--id", required=True, help="unique key id (jti), e.g. app-prod-1")
    p.add_argument("--team", required=True, help="team the usage is accounted to")
    p.add_argument(
        "--endpoints",
        default=DEFAULT_ENDPOINTS,
        help="comma-separated endpoint kinds, or '*' (default: %(default)s). Anthropic: "
        "messages, count_tokens, models; OpenAI: chat_completions, responses, embeddings, "
        "moderations, completions, models",
    )
    p.add_argument("--models", help="comma-separated globs, e.g. 'claude-sonnet-*' (default: any)")
    p.add_argument("--max-tokens", type=int, help="ceiling on a request's max_tokens")
    p.add_argument("--rpm", type=int, help="requests per minute")
    p.add_argument("--input-tpm", type=int, help="input tokens per minute")
    p.add_argument("--output-tpm", type=int, help="output tokens per minute")
    p.add_argument("--concurrency", type=int, help="concurrent requests")
    p.add_argument(
        "--upstream-labels",
        help="hold the key to upstream targets with these labels, e.g. 'region=eu,zdr=true'",
    )
    p.add_argument("--expires-in", default="90d", help="e.g. 12h, 30d, 2w, or 'never' (90d)")
    p.add_argument("--not-before", help="ISO 8601 time the key starts working (default: now)")
    p.add_argument(
        "--unbounded",
        action="store_true",
        help="allow a key without expiry or without any rate limit",
    )
    p.set_defaults(func=cmd_issue)

    p = ks.add_parser("inspect", help="show a key's claims and whether a config accepts it")
    p.add_argument("key", help="the key, or '-' to read it from stdin (keeps it out of history)")
    p.add_argument("--config", help="check against this config (signature, expiry, revocation)")
    p.set_defaults(func=cmd_inspect)

    p = ks.add_parser("revoke", help="revoke a key id (Redis when configured, else revoked_file)")
    p.add_argument("key_id")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_revoke)


def cmd_init(args: argparse.Namespace) -> int:
    if not re.match(r"^[A-Za-z0-9._-]{1,64}$", args.kid):
        return _fail("--kid: use letters, digits, '.', '_' or '-' (at most 64)")
    out = Path(args.out)
    for name in (f"{args.kid}.key.pem", f"{args.kid}.pub.pem"):
        if (out / name).exists():
            return _fail(f"{out / name} already exists; choose a new --kid (never reuse one)")
    private_path, public_path = write_key_pair(out, args.kid)
    _err(f"signing key (keep secret, mode 0600): {private_path}")
    _err(f"public key (list it in auth.signing_keys with kid {args.kid!r}): {public_path}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from gateway.auth import tokens

    try:
        key = load_private_key(args.signing_key)
        expires = parse_duration(args.expires_in)
        nbf = _parse_time(args.not_before) if args.not_before else None
        labels = parse_labels(args.upstream_labels) if args.upstream_labels else None
        for flag in ("max_tokens", "rpm", "input_tpm", "output_tpm", "concurrency"):
            v = getattr(args, flag)
            if v is not None and v <= 0:
                raise ValueError(f"--{flag.replace('_', '-')} must be a positive integer")
    except (KeyLoadError, ValueError) as exc:
        return _fail(str(exc))
    limits = Limits(args.rpm, args.input_tpm, args.output_tpm, args.concurrency)
    if not args.unbounded:
        if expires is None:
            return _fail("refusing a key that never expires; add --unbounded if you mean it")
        if not any((limits.rpm, limits.input_tpm, limits.output_tpm, limits.concurrency)):
            return _fail(
                "refusing a key without any limit: give --rpm, --input-tpm, --output-tpm or "
                "--concurrency (or --unbounded if you mean it)"
            )
    now = int(time.time())
    claims = tokens.KeyClaims(
        key_id=args.id,
        team=args.team,
        issued_at=now,
        not_before=nbf if nbf is not None else now,
        expires_at=(nbf or now) + expires if expires is not None else None,
        endpoints=None if args.endpoints.strip() == "*" else _csv(args.endpoints),
        models=_csv(args.models) if args.models else None,
        max_tokens=args.max_tokens,
        limits=limits,
        upstream_labels=labels,
    )
    try:
        token = tokens.issue(claims, key, args.kid or kid_of(args.signing_key))
    except tokens.Rejected:
        return _fail("invalid claims: --id/--team/--endpoints use letters, digits, . _ : -")
    except ValueError as exc:
        return _fail(str(exc))
    print(token)
    _err(f"issued key {claims.key_id} for team {claims.team}; expires {_when(claims.expires_at)}")
    return 0


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """`region=eu,zdr=true` → sorted pairs; raises ValueError naming the flag."""
    pairs: dict[str, str] = {}
    for item in _csv(text):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if (
            not sep
            or not re.match(r"^[A-Za-z0-9._-]{1,64}$", name)
            or not re.match(r"^[A-Za-z0-9._-]{1,64}$", value)
        ):
            raise ValueError(
                "--upstream-labels: NAME=VALUE pairs separated by commas, e.g. region=eu "
                "(letters, digits, '.', '_', '-')"
            )
        if name in pairs and pairs[name] != value:
            raise ValueError(f"--upstream-labels: {name} given twice with different values")
        pairs[name] = value
    if not pairs:
        raise ValueError("--upstream-labels: give at least one NAME=VALUE")
    return tuple(sorted(pairs.items()))


def cmd_inspect(args: argparse.Namespace) -> int:
    import jwt

    from gateway.auth import tokens

    credential = sys.stdin.readline().strip() if args.key == "-" else args.key.strip()
    try:
        jws = tokens.split(credential)
        header = jwt.get_unverified_header(jws)
        claims = tokens.validate_payload(jwt.decode(jws, options={"verify_signature": False}))
    except (tokens.Rejected, jwt.InvalidTokenError):
        return _fail("not a zdr-gateway key (expected zdr_… as printed by `keys issue`)")
    limits = {k: v for k, v in vars_of(claims.limits).items() if v is not None}
    report: dict[str, Any] = {
        "key_id": claims.key_id,
        "team": claims.team,
        "kid": header.get("kid"),
        "issued_at": _when(claims.issued_at),
        "not_before": _when(claims.not_before),
        "expires_at": _when(claims.expires_at),
        "endpoints": list(claims.endpoints) if claims.endpoints is not None else "any",
        "models": list(claims.models) if claims.models is not None else "any",
        "max_tokens": claims.max_tokens,
        "limits": limits,
        "upstream_labels": dict(claims.upstream_labels) if claims.upstream_labels else "any",
    }
    code = 0
    if args.config:
        from redis.exceptions import RedisError

        try:
            config = load(args.config)
            verdict = asyncio.run(_check(credential, config))
        except (ConfigError, KeyLoadError, ValueError) as exc:
            return _fail(f"cannot check against the config:\n{exc}")
        except (RedisError, OSError) as exc:
            return _fail(f"cannot read revocations from Redis ({type(exc).__name__})")
        report["accepted"] = verdict is None
        if verdict is not None:
            report["refused_because"] = _WHY.get(verdict, verdict)
            code = 1
    else:
        report["accepted"] = "not checked (give --config FILE)"
    print(json.dumps(report, indent=2))
    return code


def cmd_revoke(args: argparse.Namespace) -> int:
    if not re.match(r"^[A-Za-z0-9._:-]{1,64}$", args.key_id):
        return _fail("KEY_ID: letters, digits, . _ : - (the key's id, not the key itself)")
    try:
        config = load(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    rl = config.ratelimit
    if rl.backend == "redis" and rl.redis_url:
        from redis.exceptions import RedisError

        try:
            added = asyncio.run(
                _revoke_redis(rl.redis_url, config.auth.revoked_redis_key, args.key_id)
            )
        except (RedisError, OSError) as exc:
            return _fail(f"cannot reach Redis ({type(exc).__name__}); the key is NOT revoked")
        _err(
            f"{args.key_id}: {'revoked' if added else 'already revoked'} in Redis; "
            "every replica refuses it within about a second"
        )
        return 0
    if config.auth.revoked_file:
        try:
            path = config.auth.revoked_file
            with open(path, "a", encoding="utf-8") as f:  # ZDR-OK: a key id, by the operator
                f.write(f"{args.key_id}\n")
        except OSError as exc:
            return _fail(
                f"cannot append to {config.auth.revoked_file}: {exc.strerror}; NOT revoked"
            )
        _err(
            f"{args.key_id}: added to {config.auth.revoked_file}; running gateways re-read it "
            "within about a second"
        )
        return 0
    _err(
        f"no Redis and no auth.revoked_file in {args.config}: add {args.key_id!r} to "
        "auth.revoked in the config and reload the gateway (SIGHUP), or set auth.revoked_file"
    )
    return 2


async def _check(credential: str, config: Config) -> str | None:
    from gateway.auth import tokens
    from gateway.auth.keyset import load_keyset

    keyset = load_keyset(config.auth.signing_keys)
    remote = None
    rl = config.ratelimit
    if rl.backend == "redis" and rl.redis_url:
        from redis.asyncio import Redis

        client = Redis.from_url(rl.redis_url)
        try:
            remote = RedisRevocations(client, config.auth.revoked_redis_key)
            await remote.poll_once()
        finally:
            await client.aclose()
    revoked = Revocations(config.auth.revoked, config.auth.revoked_file, remote)
    try:
        tokens.verify(credential, keyset, time.time(), revoked, config.auth.leeway_seconds)
    except tokens.Rejected as exc:
        return exc.reason
    return None


async def _revoke_redis(url: str, key: str, key_id: str) -> bool:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        return await revoke(client, key, key_id)
    finally:
        await client.aclose()


def parse_duration(text: str) -> int | None:
    """'90d' → seconds; 'never' → None."""
    if text.strip().lower() == "never":
        return None
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"--expires-in: expected e.g. 12h, 30d, 2w or never (got {text[:20]!r})")
    return int(m.group(1)) * _UNITS[m.group(2)]


def vars_of(limits: Limits) -> dict[str, int | None]:
    return {k: getattr(limits, k) for k in ("rpm", "input_tpm", "output_tpm", "concurrency")}


def _parse_time(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("--not-before: expected ISO 8601, e.g. 2026-12-01T00:00:00Z") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _when(ts: int | None) -> str:
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _fail(msg: str) -> int:
    _err(f"error: {msg}")
    return 1


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m gateway.auth.cli keys …`); normally via `zdr-gateway`."""
    parser = argparse.ArgumentParser(prog="zdr-gateway")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
