"""`pii:` section: validated at load, errors named by their path in the file."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway import config as config_mod
from gateway.pii.runtime import PiiRuntime
from gateway.pii.settings import CATEGORIES, PiiSettings

BASE: dict[str, Any] = {
    "server": {"tls": {"enabled": False}},
    "upstreams": [{"name": "a", "provider": "anthropic", "url": "https://x", "api_key": "k"}],
}


def load(pii: Any) -> config_mod.Config:
    return config_mod.parse(yaml.safe_dump({**BASE, "pii": pii}), source="t.yaml", env={})


def test_absent_section_is_everything_off() -> None:
    cfg = config_mod.parse(yaml.safe_dump(BASE), env={})
    assert not cfg.pii.enabled
    assert PiiRuntime(cfg.pii).modes("anyone") is None


def test_team_entries_override_the_default_one_by_one() -> None:
    cfg = load(
        {
            "default": {"email": "pseudonymise", "card": "mask"},
            "teams": {"research": {"email": "off", "phone": "block"}, "sandbox": "off"},
        }
    )
    runtime = PiiRuntime(cfg.pii)
    assert runtime.modes(None) == {"email": "pseudonymise", "card": "mask"}
    assert runtime.modes("research") == {"card": "mask", "phone": "block"}
    assert runtime.modes("sandbox") is None  # nothing to do: the stage returns at once
    assert runtime.modes("unknown-team") == runtime.modes(None)
    assert cfg.pii.modes("sandbox") == dict.fromkeys(CATEGORIES, "off")


@pytest.mark.parametrize(
    ("pii", "path", "message"),
    [
        ({"default": {"email": "hide"}}, "pii.default.email", "Input should be"),
        ({"default": {"fax": "mask"}}, "pii.default.fax", "unknown option"),
        ({"teams": {"t": {"phone": "maybe"}}}, "pii.teams.t", "Input should be"),
        ({"phone_regions": ["usa"]}, "pii.phone_regions", "two upper-case letters"),
        ({"national_ids": ["xx.nope"]}, "pii.national_ids", "unknown national id"),
        ({"patterns": {"emp": "EMP-("}}, "pii.patterns", "not a valid regular expression"),
        ({"patterns": {"emp": "x*"}}, "pii.patterns", "matches the empty string"),
        ({"patterns": {"Bad Name": "x"}}, "pii.patterns", "lower-case letters"),
        ({"terms": {"email": ["Acme"]}}, "pii.terms", "built-in category"),
        ({"terms": {"client": ["A"]}}, "pii.terms", "terms.client"),
        ({"terms": {"x": ["Acme"]}, "patterns": {"x": "y"}}, "pii", "both terms and patterns"),
    ],
)
def test_bad_values_are_refused_at_load_with_their_path(pii: Any, path: str, message: str) -> None:
    with pytest.raises(config_mod.ConfigError) as info:
        load(pii)
    paths = [p for p, _ in info.value.problems]
    assert any(p.startswith(path) for p in paths), info.value.problems
    assert message in str(info.value)


def test_yaml_bare_off_means_the_mode_off() -> None:
    text = yaml.safe_dump(BASE) + "pii:\n  default: {email: mask, ip: off}\n  teams: {t: off}\n"
    cfg = config_mod.parse(text, env={})
    assert cfg.pii.default.ip == "off"
    assert PiiRuntime(cfg.pii).modes("t") is None


def test_a_term_is_not_echoed_in_an_error() -> None:
    with pytest.raises(config_mod.ConfigError) as info:
        load({"terms": {"client": ["Acme Corp", " Zyxwvut Secret Client"]}})
    assert "Zyxwvut" not in str(info.value)


def test_enabled_when_only_a_team_turns_a_category_on() -> None:
    settings = PiiSettings.model_validate({"teams": {"t": {"ip": "mask"}}})
    assert settings.enabled
    assert PiiRuntime(settings).modes(None) is None
    assert PiiRuntime(settings).modes("t") == {"ip": "mask"}
