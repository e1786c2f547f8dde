"""What the pseudonymise stage needs, compiled once at start-up (only when `pii:` turns
a category on): the detectors and each team's modes."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.pii.detect import Detectors
from gateway.pii.settings import Mode, PiiSettings

# Its examples are not placeholder-shaped ("n", not a number): the line itself must not
# read as one to the restore side or to the collision check.
HINT = (
    "Text in square brackets such as [EMAIL_n] or [PHONE_n] stands for a value withheld "
    "for privacy: copy each one exactly as written wherever the value is needed."
)


class PiiRuntime:
    """What the stage needs, compiled once at startup: detectors and each team's modes."""

    def __init__(self, settings: PiiSettings) -> None:
        self.settings = settings
        self.hint = HINT
        self.detectors = Detectors.build(settings)
        self._default = self._active(settings.modes(None))
        self._teams = {team: self._active(settings.modes(team)) for team in settings.teams}

    @staticmethod
    def _active(modes: Mapping[str, Mode]) -> dict[str, Mode] | None:
        on: dict[str, Mode] = {c: m for c, m in modes.items() if m != "off"}
        return on or None

    def modes(self, team: str | None) -> dict[str, Mode] | None:
        """The categories on for a team, or None: nothing to do for its requests."""
        if team is not None and team in self._teams:
            return self._teams[team]
        return self._default
