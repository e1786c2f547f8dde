"""The demo ships inside the package: a wheel built from exactly what the Dockerfile's
build stage copies (of the tracked files), installed into a fresh venv (no editable
install, no source tree), runs `zdr-gateway demo`, as the image and `pip install .` do."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.demo import run as demo

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def _dockerfile_build_copies() -> set[str]:
    """The sources named by the build stage's COPY lines (the last word is the target)."""
    copies: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            copies.update(w.rstrip("/").removeprefix("./") for w in words[1:-1])
    return copies


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_from_a_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    # Build from a copy of the tracked files the image copies: the build writes nothing
    # into the checkout, and a file the wheel needs but the image (or git) lacks fails here.
    src = tmp_path / "src"
    copied = _dockerfile_build_copies()
    assert {"gateway", "pyproject.toml"} <= copied, copied
    tracked = _run("git", "ls-files", "-z", cwd=ROOT, timeout=30).stdout.split("\0")
    for name in filter(None, tracked):
        if not any(name == c or name.startswith(c + "/") for c in copied):
            continue
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file() and not (ROOT / name).is_symlink():
            shutil.copyfile(ROOT / name, target)
    wheels = tmp_path / "wheels"
    built = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, src,
                 cwd=tmp_path, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("zdr_gateway-*.whl")

    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=tmp_path, timeout=120)
    assert made.returncode == 0, made.stderr
    installed = _run(venv / "bin" / "pip", "install", "-q", wheel, cwd=tmp_path, timeout=400)
    assert installed.returncode == 0, installed.stderr[-2000:]

    # From an empty directory, so nothing can come from the source tree.
    home = tmp_path / "elsewhere"
    home.mkdir()
    done = _run(venv / "bin" / "zdr-gateway", "demo", cwd=home, timeout=90)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert demo.REPLY in done.stdout
    assert "zdr_gateway_requests_total{" in done.stdout
    assert '"request_id":"gw_' in done.stdout
    assert "what the operator sees" in done.stdout
    assert list(home.iterdir()) == []  # the demo wrote no file where it ran
