"""The topology page's files (webapi.ui): served with their media types, the page loading
the vendored cytoscape.js and its own script; listed in the OpenAPI document (the
browser test is tests/e2e/test_ui.py)."""

from __future__ import annotations

import pytest
import requests

from webapi.ui import FILES, STATIC

from .support import Api


@pytest.mark.parametrize("url", list(FILES))
def test_every_file_is_served_whole_with_its_media_type(api: Api, url: str) -> None:
    name, media_type = FILES[url]
    response = requests.get(f"{api.services.webapi_url}/ui/{url}", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == media_type
    assert response.content == (STATIC / name).read_bytes()


def test_the_page_loads_cytoscape_and_its_script(api: Api) -> None:
    page = requests.get(f"{api.services.webapi_url}/ui/", timeout=10).text
    assert '<script src="cytoscape.min.js"></script>' in page
    assert '<script src="ui.js"></script>' in page
    assert (STATIC / "vendor" / "cytoscape" / "LICENSE").read_text().startswith("Copyright")


def test_an_unknown_file_is_a_json_404(api: Api) -> None:
    response = requests.get(f"{api.services.webapi_url}/ui/secret.txt", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_the_document_lists_the_page(api: Api) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert paths["/ui/"]["get"]["responses"]["200"]["content"] == {
        "text/html": {"schema": {"type": "string"}}}
