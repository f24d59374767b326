"""The topology page: `GET /ui/` and its assets, static files under webapi/static.

The page (static/index.html, ui.js, ui.css) draws the virtual network from the API's
list endpoints with cytoscape.js (vendored, static/vendor/cytoscape: the npm release's
dist/cytoscape.min.js and LICENSE); nothing is built at run time.  Each file is one
declared route, so the OpenAPI document lists them like every other route.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Response, send_file

from webapi.routes import Route

STATIC = Path(__file__).resolve().parent / "static"
# URL under /ui/ -> (file under STATIC, media type)
FILES: dict[str, tuple[str, str]] = {
    "": ("index.html", "text/html"),
    "ui.js": ("ui.js", "text/javascript"),
    "ui.css": ("ui.css", "text/css"),
    "cytoscape.min.js": ("vendor/cytoscape/cytoscape.min.js", "text/javascript"),
}


def _view(name: str, media_type: str) -> Callable[[], Response]:
    path = STATIC / name

    def view() -> Response:
        # no-cache: a page left open across an upgrade revalidates its script
        return send_file(path, mimetype=media_type, max_age=0)
    return view


def ui_routes() -> list[Route]:
    """One GET route per file of the page."""
    return [Route(f"/ui/{url}", "GET", "ui_" + (url.replace(".", "_") or "index"),
                  _view(name, media), f"Topology page: {name}", "ui", None, errors=(),
                  media_type=media)
            for url, (name, media) in FILES.items()]
