"""/docs and /redoc work without internet: the pages load Swagger UI and ReDoc from the service itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from app.main import create_app
from tests.support import service

SERVICE = "http://rankr-ghl-sync.test:8000"
ABSOLUTE_URL = re.compile(r"https?://([^/\s'\"<>`]+)", re.IGNORECASE)


class References(HTMLParser):
    """What a page makes the browser load: (tag, rel, url) for every src, href and ReDoc spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "spec-url"):
            url = values.get(name)
            if url:
                self.found.append((tag, values.get("rel") or "", url))


def content_types(tag: str, rel: str) -> tuple[str, ...]:
    """The content types a browser accepts for what ``tag`` loads (it refuses a script sent as text)."""
    if tag == "script":
        return ("text/javascript", "application/javascript")
    if tag == "redoc":
        return ("application/json",)
    if "stylesheet" in rel:
        return ("text/css",)
    if "icon" in rel:
        return ("image/",)
    raise AssertionError(f"a <{tag} rel={rel!r}> the test does not know")


@pytest.fixture(params=[True, False], ids=["sandbox", "production"])
async def http(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process (its lifespan does not run: the pages need no database)."""
    settings = service.test_settings(
        f"sqlite:///{tmp_path / 'docs.db'}", SERVICE, sandbox=request.param, api_docs="public"
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url=SERVICE) as client:
        yield client


@pytest.mark.anyio
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_load_every_asset_from_the_service_itself(
    http: httpx.AsyncClient, page: str
) -> None:
    answer = await http.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    service_host = urlsplit(SERVICE).netloc
    assert {host.lower() for host in ABSOLUTE_URL.findall(answer.text)} <= {service_host}, answer.text

    parser = References()
    parser.feed(answer.text)
    assert "script" in [tag for tag, _, _ in parser.found], "the page loads no script: nothing would render"
    for tag, rel, reference in parser.found:
        url = urljoin(f"{SERVICE}{page}", reference)
        assert urlsplit(url).netloc == service_host, f"{page} loads {reference} from elsewhere"
        asset = await http.get(url)
        assert asset.status_code == 200, f"{page}: {reference} answers {asset.status_code}"
        assert asset.headers["content-type"].startswith(content_types(tag, rel)), (reference, asset.headers)
        assert asset.content, f"{page}: {reference} is empty"
