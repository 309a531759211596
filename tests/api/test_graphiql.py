"""GraphiQL works without network: every script and stylesheet its page references is
served by the app itself, and is the very file the page's integrity hash names."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.found.append((a["src"], a.get("integrity")))
        if tag == "link" and a.get("rel") == "stylesheet":
            self.found.append((a["href"], a.get("integrity")))


async def test_graphiql_loads_every_asset_from_the_app(client):
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    parser = _Assets()
    parser.feed(page.text)
    assert len(parser.found) >= 6, parser.found  # react, react-dom, js-cookie, graphiql (js, css), explorer
    for url, integrity in parser.found:
        assert url.startswith("/graphiql/"), f"{url} is not served by the app"
        served = await client.get(url)
        assert served.status_code == 200, url
        if integrity:  # what the browser checks before running it
            algorithm, expected = integrity.split("-", 1)
            digest = base64.b64encode(hashlib.new(algorithm, served.content).digest()).decode()
            assert digest == expected, f"{url} is not the file the page's integrity hash names"
    assert "unpkg.com" not in page.text and "https://" not in "".join(u for u, _ in parser.found)


async def test_graphiql_assets_are_files_of_that_folder_only(client):
    assert (await client.get("/graphiql/../app.py")).status_code == 404
    assert (await client.get("/graphiql/nothing-here.js")).status_code == 404
