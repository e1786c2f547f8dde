"""Helpers for the listener tests: plaintext configs with small deadlines, raw sockets."""

from __future__ import annotations

import asyncio
import copy
import re
import resource
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def plain_config(config_dict: dict[str, Any]) -> dict[str, Any]:
    """The default test config without TLS on the listener (raw sockets are simpler)."""
    cfg = copy.deepcopy(config_dict)
    cfg["server"]["tls"] = {"enabled": False}
    return cfg


def raise_nofile(at_least: int) -> None:
    """Raise this process's soft open-files limit (tests opening many sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < at_least:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(at_least, hard), hard))


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if the peer closes (EOF or reset) within `seconds`, reading whatever comes."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests marked `both_loops` run on asyncio's loop and on uvloop's, which `serve`
    uses: the connection gate layers each loop's own TLS."""
    if item.get_closest_marker("both_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
