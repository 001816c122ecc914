"""Swagger UI (/docs) and ReDoc (/redoc): served whole by the API itself, and read like the other reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mediamesh.orchestrator.interfaces.api import ApiSettings, create_app
from mediamesh.orchestrator.mesh import Mesh
from mediamesh.store import StoreSettings

TOKEN = "docs-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGES = ["/docs", "/redoc"]


class _Links(HTMLParser):
    """Every URL a page makes the browser load: ``<script src>``, ``<link href>``, ``<img src>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def _no_mesh() -> Mesh:
    raise AssertionError("the docs pages must not open the store")


def _client(**settings: object) -> TestClient:
    api = ApiSettings.model_validate({"token": SecretStr(TOKEN), **settings})
    return TestClient(create_app(_no_mesh, api, store_settings=StoreSettings(s3_endpoint=None)))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with _client() as opened:
        yield opened


@pytest.mark.parametrize("page", PAGES)
def test_a_docs_page_loads_everything_from_the_service(client: TestClient, page: str) -> None:
    response = client.get(page, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    links = _Links()
    links.feed(response.text)
    # The script, the favicon and (Swagger UI) the stylesheet.
    assert len(links.urls) >= 2, links.urls
    base = str(client.base_url) + page
    for url in links.urls:
        assert not urlsplit(url).netloc, f"{page} loads {url} from another host"
        asset = client.get(urljoin(base, url))
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    # Nor does the page's inline script reach out: no absolute URL anywhere in it (fonts, validator badge).
    assert not re.search(r"https?://", response.text), re.findall(r"https?://\S+", response.text)


@pytest.mark.parametrize("page", PAGES)
def test_a_docs_page_points_at_the_services_own_schema(client: TestClient, page: str) -> None:
    text = client.get(page, headers=AUTH).text
    assert "/openapi.json" in text
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "mediamesh"
    assert not {"/docs", "/redoc"} & set(schema["paths"]), "the pages are not part of the API"


def test_swagger_ui_asks_no_validator_service(client: TestClient) -> None:
    assert re.search(r'"validatorUrl":\s*null', client.get("/docs", headers=AUTH).text)


@pytest.mark.parametrize("page", PAGES)
def test_a_docs_page_needs_the_token_when_reads_do(client: TestClient, page: str) -> None:
    assert client.get(page).status_code == 401
    assert client.get(page, headers={"Authorization": "Bearer wrong"}).status_code == 403
    with _client(token=None) as unconfigured:
        assert unconfigured.get(page).status_code == 503
    # The bundles are the same public files for every deployment: nothing to guard.
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


@pytest.mark.parametrize("page", PAGES)
def test_a_docs_page_is_open_when_reads_are(page: str) -> None:
    with _client(open_reads=True) as client:
        assert client.get(page).status_code == 200
