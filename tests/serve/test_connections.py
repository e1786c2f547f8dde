"""The connection cap, and 1,000 slow heads against a gateway that keeps serving."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
import pytest

from gateway.serve import fds
from tests.conftest import Gateway, SpawnGateway, StartGateway
from tests.serve.conftest import closed_within, metric, raise_nofile
from tests.serve.test_deadlines import HEAD, REQUEST

pytestmark = pytest.mark.both_loops


async def served(gw_port: int) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw_port)
    try:
        writer.write(REQUEST)
        line = await asyncio.wait_for(reader.readline(), 5)
        return line.startswith(b"HTTP/1.1 200")
    except (ConnectionError, asyncio.IncompleteReadError):
        return False
    finally:
        writer.close()


async def test_past_the_cap_new_connections_are_closed_on_accept_and_counted(
    start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    config_dict["server"]["limits"] = {"max_connections": 3}
    gw: Gateway = await start_gateway(config_dict)
    port = gw.running.port
    # Three connections that never start TLS hold the three places...
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    await asyncio.sleep(0.1)
    assert gw.sample("zdr_gateway_client_connections_open") == 3
    # ...so a fourth is closed before any TLS work: the handshake fails at once.
    started = time.monotonic()
    with pytest.raises((ConnectionError, OSError)):
        await asyncio.open_connection(
            "127.0.0.1", port, ssl=gw.client_ssl(), server_hostname="localhost"
        )
    assert time.monotonic() - started < 1
    assert gw.sample("zdr_gateway_client_connections_refused_total") == 1
    # A place freed is a place for a new client.
    held.pop()[1].close()
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=gw.client_ssl(), server_hostname="localhost"
    )
    writer.write(REQUEST)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()
    for _, w in held:
        w.close()


def test_the_cap_fits_under_the_open_files_limit() -> None:
    # Room for the cap: the soft limit is raised (up to the hard one) to fit it.
    p = fds.plan(10_000, 100, soft=1024, hard=1_048_576)
    assert p.soft == 10_000 + 100 + fds.RESERVE
    assert p.max_connections == 10_000
    # No room: the cap is lowered rather than let accept() hit EMFILE.
    p = fds.plan(10_000, 100, soft=1024, hard=4096)
    assert p.soft == 4096
    assert p.max_connections == 4096 - 100 - fds.RESERVE
    # Already enough: nothing changes.
    assert fds.plan(100, 10, soft=20_000, hard=20_000) == fds.FilePlan(20_000, 100)


@pytest.mark.slow
async def test_1000_slow_heads_are_closed_while_normal_requests_keep_their_latency(
    spawn_gateway: SpawnGateway, plain_config: dict[str, Any]
) -> None:
    raise_nofile(4096)
    head_deadline = 2.0
    plain_config["server"]["timeouts"] = {"head": head_deadline, "idle": 60}
    gp = await spawn_gateway(plain_config)
    port = int(gp.url.rsplit(":", 1)[1])

    async def latencies(n: int) -> list[float]:
        out = []
        for _ in range(n):
            started = time.monotonic()
            assert await served(port)
            out.append(time.monotonic() - started)
            await asyncio.sleep(0.02)
        return out

    baseline = await latencies(20)
    slow = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(1000)))
    opened = time.monotonic()
    for _, writer in slow:
        writer.write(HEAD)
    stop = asyncio.Event()

    async def trickle() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.25)
            for _, writer in slow:
                if not writer.is_closing():
                    writer.write(b"x")

    trickler = asyncio.create_task(trickle())
    during_task = asyncio.create_task(latencies(40))
    closed = await asyncio.gather(*(closed_within(r, head_deadline + 8) for r, _ in slow))
    all_closed_after = time.monotonic() - opened
    during = await during_task
    stop.set()
    await trickler
    for _, writer in slow:
        writer.close()
    assert all(closed), f"{closed.count(False)} of 1000 slow heads still open"
    assert head_deadline * 0.9 < all_closed_after < head_deadline + 8
    # Normal requests kept a normal latency throughout (loopback: milliseconds).
    print(
        f"median latency before {statistics.median(baseline) * 1000:.1f} ms, during "
        f"{statistics.median(during) * 1000:.1f} ms, max during {max(during) * 1000:.1f} ms; "
        f"1000 slow heads all closed {all_closed_after:.2f} s after opening"
    )
    assert statistics.median(during) < 3 * statistics.median(baseline) + 0.02
    assert max(during) < 1.0
    async with aiohttp.ClientSession() as http, http.get(gp.admin_url + "/metrics") as resp:
        text = await resp.text()
    assert metric(text, "zdr_gateway_client_connection_timeouts_total", phase="head") == 1000
