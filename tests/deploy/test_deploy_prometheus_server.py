"""A real Prometheus (Debian's `prometheus` binary) on loopback scrapes a running gateway
with the shipped alert rules loaded: its HTTP API shows the request counter move by
exactly the requests sent, every rule evaluates cleanly against the real series, and
every dashboard query runs (the main panels with data)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest
import yaml

from tests.conftest import Gateway
from tests.deploy.deploy_support import RULES, dashboard_exprs, rule_groups, tool
from tests.support.eventually import eventually
from tests.support.ports import free_port

DEADLINE = 20.0  # seconds for any one wait below; the whole test takes a few seconds


@dataclass
class Prometheus:
    url: str
    http: aiohttp.ClientSession

    async def query(self, promql: str) -> list[dict[str, Any]]:
        async with self.http.get(self.url + "/api/v1/query", params={"query": promql}) as r:
            body = await r.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def value(self, promql: str) -> float | None:
        result = await self.query(promql)
        return float(result[0]["value"][1]) if result else None

    async def get(self, path: str) -> dict[str, Any]:
        async with self.http.get(self.url + path) as r:
            body: dict[str, Any] = await r.json()
        return body


@pytest.fixture
def prometheus_process(gateway: Gateway, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    admin = gateway.admin_url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "zdr-gateway",
                "static_configs": [{"targets": [admin], "labels": {"namespace": "ci"}}],
            }
        ],
    }
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def prometheus(prometheus_process: tuple[str, Path]) -> AsyncIterator[Prometheus]:
    url, log_path = prometheus_process
    async with aiohttp.ClientSession() as http:
        prom = Prometheus(url, http)

        async def ready() -> bool:
            try:
                async with http.get(url + "/-/ready") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await until(ready, "Prometheus ready", log_path)
        yield prom


async def until(
    check: Callable[[], Awaitable[bool]], what: str, log_path: Path | None = None
) -> None:
    try:
        await eventually(check, timeout=DEADLINE, interval=0.2, what=what)
    except AssertionError as e:
        log = log_path.read_text(errors="replace")[-3000:] if log_path else ""
        raise AssertionError(f"timed out waiting for {what}\n{log}") from e


async def test_prometheus_sees_the_request_counter_move(
    prometheus: Prometheus, gateway: Gateway, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    async def scraped() -> bool:
        return await prometheus.value('up{job="zdr-gateway"}') == 1.0

    await until(scraped, "the first scrape of the gateway")
    assert await prometheus.value('zdr_gateway_ready{job="zdr-gateway"}') == 1.0
    before = await prometheus.value('sum(zdr_gateway_requests_total{job="zdr-gateway"})') or 0.0

    sent = 5
    for _ in range(sent):
        await anthropic_client.messages.create(
            model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
        )

    async def moved() -> bool:
        now = await prometheus.value('sum(zdr_gateway_requests_total{job="zdr-gateway"})')
        return now == before + sent

    await until(moved, f"zdr_gateway_requests_total to grow by {sent}")
    await check_rules(prometheus)
    await check_dashboard_queries(prometheus)
    by_class = await prometheus.query(
        'sum by (status_class, route) (zdr_gateway_requests_total{job="zdr-gateway"})'
    )
    assert {(r["metric"]["status_class"], r["metric"]["route"]) for r in by_class} == {
        ("2xx", "messages")
    }
    tokens = await prometheus.value('sum(zdr_gateway_tokens_total{job="zdr-gateway"})')
    assert tokens is not None
    assert tokens > 0
    # The served certificate's notAfter (trustme: year 3000), so no expiry alert fires.
    days_left = await prometheus.value(
        "min(zdr_gateway_tls_cert_expiry_timestamp_seconds - time()) / 86400"
    )
    assert days_left is not None
    assert days_left > 300_000


async def check_rules(prometheus: Prometheus) -> None:
    """Every shipped rule loaded and evaluated with health ok against the real series.
    (Part of the one test above: Prometheus applies new scrape targets only every 5 s,
    so each extra Prometheus start would cost that again.)"""
    expected = {g["name"]: len(g["rules"]) for g in rule_groups()}

    async def evaluated() -> bool:
        body = await prometheus.get("/api/v1/rules")
        groups = body["data"]["groups"]
        loaded = {g["name"]: len(g["rules"]) for g in groups}
        return loaded == expected and all(r["health"] == "ok" for g in groups for r in g["rules"])

    await until(evaluated, "every rule group loaded and evaluated with health ok")
    body = await prometheus.get("/api/v1/rules")
    for group in body["data"]["groups"]:
        for rule in group["rules"]:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))

    # Before the first scrape `absent(zdr_gateway_build_info)` may be pending; once the
    # gateway is scraped it must clear (the alert sees the real build_info series).
    async def absent_cleared() -> bool:
        alerts = (await prometheus.get("/api/v1/alerts"))["data"]["alerts"]
        scraped = await prometheus.value('up{job="zdr-gateway"}') == 1.0
        return scraped and "ZdrGatewayMetricsAbsent" not in {
            a["labels"]["alertname"] for a in alerts
        }

    await until(absent_cleared, "ZdrGatewayMetricsAbsent to clear after the first scrape")


# Panels that must show data after the traffic above (others need errors, refusals or
# Redis, which this traffic does not produce).
MUST_SHOW = (
    "sum by (status_class) (rate(zdr_gateway_requests_total",
    "sum by (team) (rate(zdr_gateway_tokens_total",
    "histogram_quantile(0.99, sum by (le, route) (rate(zdr_gateway_time_to_first_byte_seconds",
    "sum(zdr_gateway_ready",
    "count(count by (hash) (zdr_gateway_config_info",
    "min((zdr_gateway_tls_cert_expiry_timestamp_seconds",
)


async def check_dashboard_queries(prometheus: Prometheus) -> None:
    """Every dashboard query runs on the real Prometheus (promtool only parses them:
    this also catches evaluation errors such as many-to-many matches)."""
    exprs = [
        e.replace("$__rate_interval", "1m").replace("$namespace", "ci").replace("$team", ".*")
        for e in dashboard_exprs()
    ]
    for expr in exprs:
        await prometheus.query(expr)  # asserts status == success
    for prefix in MUST_SHOW:
        (expr,) = (e for e in exprs if e.startswith(prefix))

        async def has_data(expr: str = expr) -> bool:
            return bool(await prometheus.query(expr))

        await until(has_data, f"data for the dashboard query {expr}")
