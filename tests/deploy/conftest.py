"""Fixtures for the deployment tests: each overlay rendered once per session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_support import OVERLAYS, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name
