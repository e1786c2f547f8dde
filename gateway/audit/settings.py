"""`audit:` config section."""

from __future__ import annotations

from typing import Literal

from gateway.settings_base import Section


class AuditSettings(Section):
    sink: Literal["stdout", "file", "none"] = "stdout"
    path: str | None = None
