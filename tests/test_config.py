"""Config: one validation, errors named by their path in the file, secrets never echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, load, parse

MINIMAL = """
server:
  port: 8443
  tls: {cert_file: /etc/tls.crt, key_file: /etc/tls.key}
upstreams:
  - {name: anthropic, provider: anthropic, url: "https://api.anthropic.com", api_key: "${KEY}"}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse(text, env={"KEY": "sk-test"} if env is None else env)
    return info.value.problems


def test_minimal_config_and_env_expansion() -> None:
    cfg = parse(MINIMAL, env={"KEY": "sk-secret-value"})
    assert cfg.upstreams[0].api_key == "sk-secret-value"
    assert cfg.server.max_body_bytes == 32 * 1024 * 1024
    assert cfg.admin.port == 9464
    assert cfg.server.tls.enabled


def test_env_default() -> None:
    cfg = parse(MINIMAL.replace("${KEY}", "${MISSING:-fallback}"), env={})
    assert cfg.upstreams[0].api_key == "fallback"


def test_config_is_frozen() -> None:
    cfg = parse(MINIMAL, env={"KEY": "k"})
    with pytest.raises(ValueError, match="frozen"):
        cfg.server.port = 1


# One bad-config case per validation rule: (edit, expected path, words in the message).
BAD = [
    (("port: 8443", "port: 99999"), "server.port", "less than or equal"),
    (("port: 8443", "prot: 8443"), "server.prot", "unknown option"),
    (("provider: anthropic", "provider: bedrock"), "upstreams[0].provider", "anthropic"),
    (('url: "https://api.anthropic.com"', "url: ftp://x"), "upstreams[0].url", "http(s) URL"),
    (("name: anthropic", "name: Bad Name"), "upstreams[0].name", "pattern"),
    (
        ("tls: {cert_file: /etc/tls.crt, key_file: /etc/tls.key}", "tls: {}"),
        "server.tls",
        "cert_file and key_file are required",
    ),
]


@pytest.mark.parametrize(("edit", "path", "words"), BAD)
def test_bad_config_names_the_path(edit: tuple[str, str], path: str, words: str) -> None:
    found = problems(MINIMAL.replace(*edit))
    assert any(p == path and words in m for p, m in found), found


def test_plaintext_needs_explicit_opt_out() -> None:
    cfg = parse(
        MINIMAL.replace(
            "tls: {cert_file: /etc/tls.crt, key_file: /etc/tls.key}", "tls: {enabled: false}"
        ),
        env={"KEY": "k"},
    )
    assert not cfg.server.tls.enabled


def test_api_key_with_a_line_break_is_refused_and_not_echoed() -> None:
    found = problems(MINIMAL, env={"KEY": "sk-secret-value\n"})
    assert [p for p, _ in found] == ["upstreams[0].api_key"]
    assert "one line" in found[0][1]
    assert "sk-secret" not in repr(found)


def test_missing_env_var_is_named_and_secret_never_echoed() -> None:
    found = problems(MINIMAL, env={})
    assert found == [("upstreams[0].api_key", "environment variable KEY is not set")]
    text = MINIMAL.replace("${KEY}", "")
    found = problems(text)
    assert found[0][0] == "upstreams[0].api_key"
    bad_secret = MINIMAL.replace('api_key: "${KEY}"', "api_key: [sk-secret-in-a-list]")
    message = str(ConfigError("x", problems(bad_secret)))
    assert "sk-secret-in-a-list" not in message


def test_duplicate_prefixes_refused() -> None:
    text = MINIMAL + '  - {name: other, provider: openai, url: "https://x", api_key: k}\n'
    found = problems(text)
    assert any("prefix" in m for _, m in found)


def test_not_yaml_and_not_a_mapping() -> None:
    assert "not valid YAML" in problems("server: [")[0][1]
    assert "mapping" in problems("- 1")[0][1]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load(tmp_path / "nope.yaml")


def test_relative_files_resolve_against_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "gw.yaml").write_text(MINIMAL.replace("/etc/tls.crt", "tls/tls.crt"))
    cfg = load(tmp_path / "gw.yaml", env={"KEY": "k"})
    assert cfg.server.tls.cert_file == str(tmp_path / "tls/tls.crt")


def test_digest_changes_with_content() -> None:
    a = parse(MINIMAL, env={"KEY": "k"}).digest()
    assert a == parse(MINIMAL, env={"KEY": "k"}).digest()
    assert a != parse(MINIMAL.replace("8443", "9443"), env={"KEY": "k"}).digest()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL.replace("${KEY}", "k"))
    ok = run_cli("check-config", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("port: 8443", "port: nope").replace("${KEY}", "k"))
    failed = run_cli("check-config", str(bad))
    assert failed.returncode == 1
    assert f"{bad}: server.port:" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_shipped_example_configs_validate() -> None:
    root = Path(__file__).resolve().parent.parent / "config"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        load(
            f,
            env={
                n: "x"
                for n in (
                    "ANTHROPIC_API_KEY",
                    "OPENAI_API_KEY",
                    "REDIS_URL",
                    "ZDR_DEMO_CERT",
                    "ZDR_DEMO_KEY",
                    "ZDR_DEMO_CA",
                    "ZDR_DEMO_UPSTREAM_KEY",
                    "ZDR_DEMO_SIGNING_PUB",
                    "AUDIT_HMAC_KEY",
                )
            }
            | {"ZDR_DEMO_UPSTREAM": "https://localhost:1"},
        )


@pytest.mark.parametrize(
    ("setting", "sink", "expected"),
    [
        ("auto", "stdout", False),
        ("auto", "file", True),
        ("auto", "none", True),
        (True, "stdout", True),
        (False, "file", False),
    ],
)
def test_access_line_auto_avoids_a_second_line_per_request(
    setting: object, sink: str, expected: bool
) -> None:
    from gateway.config import LoggingSettings

    assert LoggingSettings(access_log=setting).access_line(sink) is expected  # type: ignore[arg-type]
