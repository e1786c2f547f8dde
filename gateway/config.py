"""The gateway's configuration: a declared schema, validated once at load, then frozen.

YAML in, `Config` out. `${ENV_VAR}` (or `${ENV_VAR:-default}`) inside a string
value expands from the environment after parsing, so a secret never passes
through the YAML parser and never appears in an error message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from gateway.audit.settings import AuditSettings
from gateway.auth.settings import AuthSettings
from gateway.pii.settings import PiiSettings
from gateway.policy.settings import PolicySettings
from gateway.providers.cloud_settings import BedrockSettings, VertexSettings
from gateway.ratelimit.settings import RateLimitSettings
from gateway.routing.settings import (
    NAME_PATTERN,
    BreakerSettings,
    BudgetSettings,
    RetrySettings,
    TargetSettings,
    TeamRouting,
    check_secret_line,
    check_url,
)
from gateway.serve.harden import HardenSettings
from gateway.serve.settings import ClientTimeouts, Limits, ShedSettings
from gateway.settings_base import Section

MiB = 1024 * 1024
# Default model label values: current model ids of the supported providers.
KNOWN_MODELS = (
    "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5",
    "claude-sonnet-5", "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6",
    "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-5", "claude-sonnet-4-5",
    "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini",
    "o3", "o4-mini", "text-embedding-3-small", "text-embedding-3-large",
)  # fmt: skip
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Field names whose values are never echoed in an error message.
_SECRET_HINTS = ("key", "secret", "password", "token", "redis_url")


class TLSSettings(Section):
    # Plaintext only with an explicit `enabled: false`.
    enabled: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    # A CA bundle here = client certificates required (mTLS).
    client_ca_file: str | None = None
    min_version: Literal["1.2", "1.3"] = "1.2"
    # How often certificate files are checked for rotation on disk.
    reload_interval_seconds: float = Field(default=10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _files_when_enabled(self) -> TLSSettings:
        if self.enabled and not (self.cert_file and self.key_file):
            raise ValueError("cert_file and key_file are required unless `enabled: false`")
        return self


class ServerSettings(Section):
    host: str = "0.0.0.0"
    port: int = Field(default=8443, ge=0, le=65535)
    tls: TLSSettings
    max_body_bytes: int = Field(default=32 * MiB, gt=0, le=512 * MiB)
    # In-flight streams may finish for this long after SIGTERM.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    # A deadline for each phase of a client connection (see gateway/serve/settings.py).
    timeouts: ClientTimeouts = ClientTimeouts()
    # Connections, buffered body bytes and JSON depth per process.
    limits: Limits = Limits()
    # Load shedding: 529 for new requests when the process is saturated.
    shed: ShedSettings = ShedSettings()
    # Worker processes sharing the port (SO_REUSEPORT); one per core. More than one
    # needs `ratelimit.backend: redis` (in-memory limits would count per process).
    workers: int = Field(default=1, ge=1, le=256)

    @model_validator(mode="after")
    def _budget_fits_a_body(self) -> ServerSettings:
        if self.limits.body_memory_bytes < 3 * self.max_body_bytes:
            # A body the cap allows but the budget never could (parsing costs at least
            # three times its size: bytes, decoded text, document): refused every time.
            raise ValueError(
                "limits.body_memory_bytes must be at least 3 x max_body_bytes "
                f"({3 * self.max_body_bytes})"
            )
        return self


class AdminSettings(Section):
    host: str = "0.0.0.0"
    port: int = Field(default=9464, ge=0, le=65535)


class Timeouts(Section):
    connect: float = Field(default=10.0, gt=0, le=600)
    # From request sent to response headers (a model may think before its first byte).
    first_byte: float = Field(default=120.0, gt=0, le=3600)
    # Longest silence between two chunks of a streamed response.
    idle: float = Field(default=120.0, gt=0, le=3600)
    total: float = Field(default=900.0, gt=0, le=24 * 3600)


class UpstreamSettings(Section):
    name: str = Field(pattern=NAME_PATTERN)
    # The API clients speak. bedrock / vertex: Claude on a cloud, behind the same
    # Anthropic API (docs/clouds.md); a target of an anthropic upstream may be one too.
    provider: Literal["anthropic", "openai", "bedrock", "vertex"]
    # One target (the original form) ... (url optional for a cloud upstream: derived from
    # its region; api_key optional for it: SigV4 or OAuth2 instead)
    url: str | None = None
    api_key: str | None = None
    # Extra CA bundle for the upstream's certificate (the default of every target).
    ca_file: str | None = None
    # Residency and other labels of a single-url upstream (its pool of one).
    labels: dict[str, str] = Field(default_factory=dict)
    bedrock: BedrockSettings | None = None
    vertex: VertexSettings | None = None
    # ... or a pool of them (see docs/upstreams.md).
    targets: list[TargetSettings] = Field(default=[], max_length=64)
    # Client paths under this prefix go to this upstream with the prefix removed.
    prefix: str = Field(default="", pattern=r"^(/[a-z0-9_-]+)*$")
    timeouts: Timeouts = Timeouts()
    # Per target.
    max_connections: int = Field(default=100, gt=0, le=10000)
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    retry_budget: BudgetSettings = BudgetSettings()
    # Team name -> the labels its requests are held to (a key's own claim adds to them).
    teams: dict[str, TeamRouting] = {}

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @field_validator("api_key")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        return None if v is None else check_secret_line(v)

    @model_validator(mode="after")
    def _one_form(self) -> UpstreamSettings:
        cloud = self.provider in ("bedrock", "vertex")
        if self.targets:
            single = (self.url, self.api_key, self.bedrock, self.vertex)
            if any(v is not None for v in single) or self.labels:
                raise ValueError("give either url/api_key (labels, bedrock, vertex) or targets")
            names = [t.name for t in self.targets]
            if len(set(names)) != len(names):
                raise ValueError("target names must be unique within an upstream")
            for t in self.targets:
                # A cloud target speaks Anthropic's API to clients: only there.
                if t.cloud is not None and self.provider == "openai":
                    raise ValueError(f"target {t.name}: provider {t.cloud} serves Anthropic's API")
            if cloud and any(t.cloud is None for t in self.targets):
                raise ValueError(f"every target of a {self.provider} upstream is {self.provider}")
        elif not cloud and (self.bedrock or self.vertex):
            cloud_name = "bedrock" if self.bedrock is not None else "vertex"
            raise ValueError(f"`{cloud_name}:` applies only to `provider: {cloud_name}`")
        elif not cloud and (self.url is None or self.api_key is None):
            raise ValueError("url and api_key are required (or a list of targets)")
        else:
            try:
                self._single()  # validated now, its errors named on this upstream
            except ValidationError as exc:
                raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self

    def _single(self) -> TargetSettings:
        return TargetSettings(
            name=self.name,
            provider=self.provider,
            url=self.url or "",
            api_key=self.api_key or "",
            ca_file=self.ca_file,
            labels=self.labels,
            bedrock=self.bedrock,
            vertex=self.vertex,
        )

    def pool(self) -> list[TargetSettings]:
        """The targets; a single-url upstream is a pool of one named after it (a cloud
        upstream: one cloud target)."""
        if not self.targets:
            return [self._single()]
        return [
            t.model_copy(
                update={
                    "provider": t.provider or self.provider,
                    "ca_file": t.ca_file if t.ca_file is not None else self.ca_file,
                }
            )
            for t in self.targets
        ]


class MetricsSettings(Section):
    # Team label values; any other team is counted as `other`.
    teams: list[str] = []
    # Model label values. Exact names are their own label; a glob (`claude-*`) lets
    # matching names through up to `max_glob_models` distinct ones, so prefer exact
    # names: with a glob, a client chooses the text of a label. Anything else is `other`.
    models: list[str] = list(KNOWN_MODELS)
    max_glob_models: int = Field(default=50, ge=0, le=1000)


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    # The per-request access line. "auto": on, unless the audit trail already writes
    # one metadata line per request to stdout (the same fields and more).
    access_log: bool | Literal["auto"] = "auto"

    def access_line(self, audit_sink: str) -> bool:
        return audit_sink != "stdout" if self.access_log == "auto" else bool(self.access_log)


class Config(Section):
    server: ServerSettings
    admin: AdminSettings = AdminSettings()
    upstreams: list[UpstreamSettings] = Field(min_length=1)
    auth: AuthSettings = AuthSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    policy: PolicySettings = PolicySettings()
    audit: AuditSettings = AuditSettings()
    pii: PiiSettings = PiiSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    harden: HardenSettings = HardenSettings()

    @model_validator(mode="after")
    def _workers_share_limits(self) -> Config:
        if self.server.workers > 1:
            if self.ratelimit.enabled and self.ratelimit.backend == "memory":
                raise ValueError(
                    "server.workers > 1 needs `ratelimit.backend: redis`: in-memory limits "
                    "would be counted per worker process, multiplying every limit"
                )
            if self.server.port == 0 or self.admin.port == 0:
                raise ValueError("server.workers > 1 needs fixed ports (not 0) to share")
        return self

    @model_validator(mode="after")
    def _unique_upstreams(self) -> Config:
        names = [u.name for u in self.upstreams]
        if len(set(names)) != len(names):
            raise ValueError("upstream names must be unique")
        prefixes = [u.prefix for u in self.upstreams]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("upstream prefixes must be unique (give each a distinct `prefix`)")
        return self

    def digest(self) -> str:
        """A stable hash of the effective config (secrets hashed, never shown)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class ConfigError(Exception):
    """Every problem in a config file, each named by its path in the file."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path or '(top level)'}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


def load(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Config:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read file: {exc.strerror}")]) from None
    return parse(text, source=source, env=env, base_dir=Path(path).parent)


def parse(
    text: str,
    *,
    source: str = "<config>",
    env: dict[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(source, [("", f"not valid YAML {where}".strip())]) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, [("", "expected a mapping of sections (server, upstreams, …)")])
    problems: list[tuple[str, str]] = []
    expanded = _expand(raw, os.environ if env is None else env, "", problems)
    if base_dir is not None:
        expanded = _resolve_files(expanded, base_dir)
    if problems:
        raise ConfigError(source, problems)
    try:
        return Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(source, [describe(e) for e in exc.errors()]) from None


def _expand(node: Any, env: Any, path: str, problems: list[tuple[str, str]]) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v, env, _join(path, k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, env, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return str(env[name])
            if default is not None:
                return default
            problems.append((path, f"environment variable {name} is not set"))
            return ""

        return _ENV.sub(sub, node)
    return node


def _resolve_files(node: Any, base: Path) -> Any:
    """Relative `*_file` paths are relative to the config file's directory."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if (
                isinstance(k, str)
                and k.endswith(("_file", "path", "dir"))
                and isinstance(v, str)
                and v
            ):
                out[k] = v if os.path.isabs(v) else str(base / v)
            else:
                out[k] = _resolve_files(v, base)
        return out
    if isinstance(node, list):
        return [_resolve_files(v, base) for v in node]
    return node


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def describe(err: Any) -> tuple[str, str]:
    """One pydantic error as (path in the file, message); secrets never echoed."""
    loc = err.get("loc", ())
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    field = re.match(r"^@([a-z_]+): ", msg)
    if field:
        # A model validator's complaint about one of its fields: named by that field's path.
        path, msg = _join(path, field.group(1)), msg[field.end() :]
        loc = (*loc, field.group(1))
    if err.get("type") == "extra_forbidden":
        msg = "unknown option (check the spelling; see config/gateway.example.yaml)"
    elif err.get("type") == "missing":
        msg = "required option is missing"
    last = str(loc[-1]) if loc else ""
    secret = any(h in last.lower() for h in _SECRET_HINTS)
    value = err.get("input")
    if (
        not secret
        and isinstance(value, str | int | float | bool)
        and err.get("type")
        not in (
            "missing",
            "extra_forbidden",
        )
    ):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        msg = f"{msg} (got {shown})"
    return path, msg
