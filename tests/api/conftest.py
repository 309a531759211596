"""An API whose program pays cashback (the demo program pays none), beside the session app."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import domain.program
from api.app import create_app
from domain.program.config import parse
from tests.conftest import GraphQL, serving

CASHBACK_PERCENT = "2.5"


@pytest.fixture(scope="session")
async def cashback_app(database, settings):
    demo = (Path(domain.program.__file__).parent / "demo.toml").read_text()
    text = demo.replace(
        "[cashback]\nenabled = false\npercent = 0", f"[cashback]\nenabled = true\npercent = {CASHBACK_PERCENT}"
    )
    assert text != demo, "the demo program's [cashback] section changed: update this fixture"
    application = create_app(settings, program=parse(text, "cashback.toml"), database=database, manage_orm=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def cashback_gql(cashback_app) -> GraphQL:
    transport = httpx.ASGITransport(app=cashback_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield GraphQL(c)


@pytest.fixture(scope="session")
async def cashback_live_server(cashback_app):
    async with serving(cashback_app) as address:
        yield address
