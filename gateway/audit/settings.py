"""`audit:` config section: where the metadata-only audit trail goes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.settings_base import Section


class AuditSettings(Section):
    # stdout: JSON lines on stdout (with the logs; audit lines carry "audit": 1).
    # file: appended to `path`, the only file the gateway ever writes. none: off.
    sink: Literal["stdout", "file", "none"] = "stdout"
    path: str | None = None
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
        if self.sink == "file" and not self.path:
            raise ValueError("sink `file` needs `path` (the audit file to append to)")
        if self.sink != "file" and self.path:
            raise ValueError("`path` is only used with `sink: file`")
        if self.client_ip == "hashed" and not self.client_ip_key:
            raise ValueError("client_ip `hashed` needs client_ip_key (16+ characters, secret)")
        if self.session_id == "hashed" and not self.session_id_key:
            raise ValueError("session_id `hashed` needs session_id_key (16+ characters, secret)")
        if self.chain_key and not self.chain:
            raise ValueError("chain_key is set but chain is false")
        return self
