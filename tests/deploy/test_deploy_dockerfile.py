"""The Dockerfile: clean under the real hadolint, runs as the non-root user the manifests
expect, and installs the package the way the project does (from pyproject.toml). No
Docker engine here, so the image itself is not built; these are static checks."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.deploy.deploy_support import (
    DOCKERFILE,
    ROOT,
    Rendered,
    gateway_container,
    one,
    run,
    tool,
)

Instruction = tuple[str, str]  # (KEYWORD, arguments)


def parse(text: str) -> list[list[Instruction]]:
    """Instructions grouped by build stage; continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args.strip()))
    return stages


def stages() -> list[list[Instruction]]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def args_of(stage: list[Instruction], keyword: str) -> list[str]:
    return [a for k, a in stage if k == keyword]


def pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_hadolint_passes() -> None:
    proc = run(tool("hadolint"), "--no-color", str(DOCKERFILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n", encoding="utf-8")
    proc = run(tool("hadolint"), "--no-color", str(bad))
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # `latest` tag


def test_multi_stage_with_a_slim_python_base() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    text = DOCKERFILE.read_text(encoding="utf-8")
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?", base), base
    minor = int(base.split(".")[1].split("-")[0])
    required = pyproject()["project"]["requires-python"]
    assert required == ">=3.11"
    assert minor >= 11


def test_runs_as_the_non_root_user_of_the_manifests(rendered: Rendered, overlay: str) -> None:
    runtime = stages()[-1]
    users = args_of(runtime, "USER")
    assert users, "the runtime stage must set USER"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so that the kubelet can verify runAsNonRoot without /etc/passwd.
    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) != 0
    pod = one(rendered[overlay], "Deployment", "zdr-gateway")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsGroup"] == int(gid)


def test_install_step_matches_the_project() -> None:
    build = stages()[0]
    installs = [a for a in args_of(build, "RUN") if "pip install" in a]
    assert len(installs) == 1
    words = installs[0].split("&&")[0].split()
    # `pip install .`: the package as pyproject.toml declares it, runtime deps only
    # (the Makefile installs the same project with `-e '.[test,dev]'` for development).
    assert words[-1] == ".", installs[0]
    assert "-e" not in words
    assert "--no-cache-dir" in words
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"pip install .*-e '\.\[test,dev\]'", makefile), "Makefile install changed"
    # Everything the build backend reads is copied in before the install.
    copied = " ".join(args_of(build, "COPY"))
    project = pyproject()
    assert "pyproject.toml" in copied
    assert project["project"]["readme"] in copied
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in copied


def test_runtime_stage_carries_only_the_virtualenv() -> None:
    runtime = stages()[-1]
    copies = args_of(runtime, "COPY")
    assert copies == ["--from=build /opt/zdr-gateway /opt/zdr-gateway"]
    env = " ".join(args_of(runtime, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PATH=/opt/zdr-gateway/bin:" in env


def test_entrypoint_is_the_serve_command_of_the_manifests(rendered: Rendered, overlay: str) -> None:
    runtime = stages()[-1]
    entrypoint = json.loads(args_of(runtime, "ENTRYPOINT")[-1])
    cmd = json.loads(args_of(runtime, "CMD")[-1])
    assert entrypoint + cmd == ["zdr-gateway", "serve", "--config", "/etc/zdr-gateway/gateway.yaml"]
    assert entrypoint[0] in pyproject()["project"]["scripts"]
    container = gateway_container(rendered[overlay])
    assert container["command"] + container["args"] == entrypoint + cmd
    exposed = {int(p) for a in args_of(runtime, "EXPOSE") for p in a.split()}
    assert exposed == {p["containerPort"] for p in container["ports"]}


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, enough for this file: the last matching pattern wins."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*"):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("pyproject.toml", True),
        ("README.md", True),
        ("gateway/app.py", True),
        ("gateway/auth/settings.py", True),
        ("gateway/__pycache__/app.cpython-312.pyc", False),
        ("tests/conftest.py", False),
        (".git/config", False),
        (".venv/bin/python", False),
        ("deploy/kubernetes/base/gateway.yaml", False),
        ("keys/2026-11.pem", False),
    ],
)
def test_dockerignore_sends_only_what_the_build_needs(path: str, sent: bool) -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert _ignored(path, patterns) is not sent
