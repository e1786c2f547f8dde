"""`policy:` config section."""

from __future__ import annotations

from gateway.settings_base import Section


class PolicySettings(Section):
    pass
