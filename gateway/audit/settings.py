"""`audit:` config section: where the metadata-only audit trail goes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.audit.crypto import KID, BadKey, parse_key
from gateway.settings_base import Section


class AuditKeySettings(Section):
    """One AES-256 key of the file sink: inline (`${ENV_VAR}`) or in a file."""

    kid: str = Field(pattern=KID.pattern)
    key: str | None = None  # base64 of 32 random bytes (`zdr-gateway audit new-key`)
    key_file: str | None = None  # read at start-up; same format

    @field_validator("key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_key(v)
            except BadKey as exc:  # the message names the format, never the value
                raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _one(self) -> AuditKeySettings:
        if (self.key is None) == (self.key_file is None):
            raise ValueError("give exactly one of `key` (e.g. ${AUDIT_KEY}) or `key_file`")
        return self


class AuditSettings(Section):
    # stdout: JSON lines on stdout (with the logs; audit lines carry "audit": 1).
    # file: encrypted segments in `dir`, the only files the gateway ever writes. none: off.
    sink: Literal["stdout", "file", "none"] = "stdout"
    dir: str | None = None
    # Before segments: one plaintext file. Refused with a pointer to `dir`.
    path: str | None = None
    # The writer's name in `dir` (segment files `<stream>.<index>.seg`): one per process
    # (replicas sharing a volume: ${POD_NAME}); `serve --workers N` appends `-w<i>`.
    stream: str = Field(default="main", pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$")
    # AES-256-GCM keys; the first writes new segments, the others open old ones.
    keys: list[AuditKeySettings] = []
    # A new segment when the current one reaches this size or age (and at every start).
    rotate_bytes: int = Field(default=64 << 20, ge=4096, le=1 << 40)
    rotate_seconds: float = Field(default=86400, gt=0)
    # Closed segments last written longer ago are deleted, each leaving a tombstone.
    retention_days: float | None = Field(default=None, gt=0)
    # fsync after each write (file sink; the events of one loop turn go in one write):
    # survives a node crash, costs a disk flush per write.
    fsync: bool = False
    # Tamper evidence: each event carries `seq`, `prev` (previous hash) and `hash`.
    chain: bool = True
    # With a key the chain hashes are HMAC-SHA256, so nobody without the key can
    # recompute a consistent chain after an edit. Use ${ENV_VAR}; never shown.
    chain_key: str | None = Field(default=None, min_length=16)
    # Client IP in events: off (default), or hashed with HMAC-SHA256 under client_ip_key
    # (pseudonymous: the same client maps to the same value; not reversible without the key).
    client_ip: Literal["off", "hashed"] = "off"
    client_ip_key: str | None = Field(default=None, min_length=16)
    # Claude Code's x-claude-code-session-id in events: off (default), or hashed with
    # HMAC-SHA256 under session_id_key: per-session accountability without content.
    session_id: Literal["off", "hashed"] = "off"
    session_id_key: str | None = Field(default=None, min_length=16)

    @field_validator("client_ip", "session_id", mode="before")
    @classmethod
    def _yaml_off(cls, v: object) -> object:
        # YAML 1.1 reads a bare `off` as false.
        return "off" if v is False else v

    @model_validator(mode="after")
    def _consistent(self) -> AuditSettings:
        if self.path is not None:
            raise ValueError(
                "`path` (one plaintext file) is replaced by `dir`: a directory of encrypted "
                "segments, with `keys` (see docs/audit.md)"
            )
        if self.sink == "file" and not self.dir:
            raise ValueError("sink `file` needs `dir` (the directory of audit segments)")
        if self.sink == "file" and not self.keys:
            raise ValueError("sink `file` needs `keys` (AES-256 keys: see docs/audit.md)")
        if self.sink != "file" and (self.dir or self.keys or self.retention_days):
            raise ValueError("`dir`, `keys` and `retention_days` are only used with `sink: file`")
        if len({k.kid for k in self.keys}) != len(self.keys):
            raise ValueError("`keys`: each kid once")
        if self.client_ip == "hashed" and not self.client_ip_key:
            raise ValueError("client_ip `hashed` needs client_ip_key (16+ characters, secret)")
        if self.session_id == "hashed" and not self.session_id_key:
            raise ValueError("session_id `hashed` needs session_id_key (16+ characters, secret)")
        if self.chain_key and not self.chain:
            raise ValueError("chain_key is set but chain is false")
        return self
