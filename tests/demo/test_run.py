"""`zdr-gateway demo` runs the whole path offline and shows what an operator sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.demo import run as demo


def test_demo_runs_and_shows_stream_metrics_and_log_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "demo"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert demo.REPLY in out  # the streamed text, as it arrived
    assert "zdr_gateway_requests_total{" in out
    assert "zdr_gateway_tokens_total{" in out
    assert '"request_id":"gw_' in out  # the audit line (it doubles as the access line)
    # The operator's view carries metadata, never the prompt.
    operator_view = out.split("what the operator sees", 1)[1]
    assert demo.PROMPT not in operator_view
    assert demo.REPLY not in operator_view


def test_config_demo_yaml_is_the_demo_config() -> None:
    root = Path(__file__).resolve().parents[2]
    assert (root / "config/demo.yaml").read_text() == (root / "gateway/demo/demo.yaml").read_text()
