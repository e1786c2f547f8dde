"""One bad-config case per validation rule of the `ratelimit:` section."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, parse

BASE = """
server: {tls: {enabled: false}}
upstreams: [{name: a, provider: anthropic, url: "https://api.anthropic.com", api_key: k}]
ratelimit:
"""


def load(section: str) -> Any:
    return parse(BASE + "\n".join("  " + line for line in section.strip().splitlines()))


def test_defaults_are_memory_and_no_limits() -> None:
    rl = parse(BASE + "  {}").ratelimit
    assert rl.backend == "memory"
    assert rl.enabled
    assert rl.defaults.rpm is None


def test_full_section_parses() -> None:
    rl = load(
        """
backend: redis
redis_url: redis://r:6379/0
failure_mode: fail_open
burst: 2
defaults: {rpm: 60, input_tpm: 100000, output_tpm: 20000, concurrency: 8}
teams:
  research: {rpm: 600, shadow: [rpm], burst: 1.5}
team_default: {concurrency: 50}
"""
    ).ratelimit
    assert rl.fail_open
    assert rl.teams["research"].shadow == ["rpm"]
    assert rl.team_default.concurrency == 50


@pytest.mark.parametrize(
    ("section", "path", "says"),
    [
        ("backend: redis\nfailure_mode: fail_open", "ratelimit", "redis_url"),
        ("backend: redis\nredis_url: redis://r:6379", "ratelimit", "failure_mode"),
        ("backend: postgres", "ratelimit.backend", "memory"),
        ("failure_mode: maybe", "ratelimit.failure_mode", "fail_open"),
        ("defaults: {rpm: 0}", "ratelimit.defaults.rpm", "greater than 0"),
        ("defaults: {rpn: 5}", "ratelimit.defaults.rpn", "unknown option"),
        ("teams: {a: {shadow: [tpm]}}", "ratelimit.teams.a.shadow[0]", "rpm"),
        ("burst: 0.5", "ratelimit.burst", "greater than or equal to 1"),
        ("redis_key_prefix: 'a{b}'", "ratelimit.redis_key_prefix", "pattern"),
        ("redis_timeout_seconds: 0", "ratelimit.redis_timeout_seconds", "greater than 0"),
        ("concurrency_lease_seconds: -1", "ratelimit.concurrency_lease_seconds", "greater"),
    ],
)
def test_bad_values_name_their_path(section: str, path: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load(section)
    problems = dict(exc.value.problems)
    assert path in problems, problems
    assert says in problems[path]


def test_redis_url_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as exc:
        load("backend: redis\nredis_url: 5\nfailure_mode: fail_open")
    assert "s3cret" not in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load("backend: redis\nredis_url: [redis://u:s3cret@h]\nfailure_mode: fail_open")
    assert "s3cret" not in str(exc.value)


@pytest.mark.parametrize(
    ("server", "ratelimit", "says"),
    [
        ("workers: 2", "{backend: memory}", "needs `ratelimit.backend: redis`"),
        (
            "workers: 2\n  port: 0",
            "{backend: redis, redis_url: 'redis://r', failure_mode: fail_open}",
            "fixed ports",
        ),
        ("workers: 0", "{}", "greater than or equal to 1"),
    ],
)
def test_workers_validation(server: str, ratelimit: str, says: str) -> None:
    text = f"""
server:
  tls: {{enabled: false}}
  {server}
upstreams: [{{name: a, provider: anthropic, url: "https://api.anthropic.com", api_key: k}}]
ratelimit: {ratelimit}
"""
    with pytest.raises(ConfigError) as exc:
        parse(text)
    assert says in str(exc.value)


def test_workers_with_redis_or_without_limits_are_fine() -> None:
    base = """
server: {tls: {enabled: false}, workers: 4}
upstreams: [{name: a, provider: anthropic, url: "https://api.anthropic.com", api_key: k}]
"""
    redis = "ratelimit: {backend: redis, redis_url: 'redis://r', failure_mode: fail_closed}"
    assert parse(base + redis).server.workers == 4
    assert parse(base + "ratelimit: {enabled: false}").server.workers == 4
