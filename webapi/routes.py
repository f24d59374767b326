"""Every route of the service, derived from the resource registry (vnet.registry).

The same list registers the Flask url rules (webapi.app) and describes the paths of the
OpenAPI document (webapi.openapi), so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from vnet.registry import JOINS, LISTINGS, NESTED, RESOURCES, TOP_LEVEL, Resource
from webapi import views
from webapi.views import View

PREFIX = "/api/1.0"

READ_ERRORS = (400, 404, 422, 503)
WRITE_ERRORS = (400, 404, 409, 422, 503)


@dataclass(frozen=True)
class Route:
    rule: str  # Flask rule, e.g. /api/1.0/networks/<uuid>
    method: str
    endpoint: str
    view: View
    summary: str
    tag: str
    response: str | None  # component schema of the success body; None: not JSON
    status: int = 200
    request: str | None = None  # component schema of the request body
    page_of: Resource | None = None  # list routes: paging and filter query parameters
    errors: tuple[int, ...] = READ_ERRORS


def _resource_routes(res: Resource) -> list[Route]:
    base, item, title, tag = f"{PREFIX}/{res.name}", f"{PREFIX}/{res.name}/<uuid>", \
        res.title, res.name
    routes = [
        Route(base, "GET", f"{res.name}_list", views.list_view(res), f"List {res.name}", tag,
              f"{title}Page", page_of=res),
        Route(base, "POST", f"{res.name}_create", views.write_view("create", res, 201),
              f"Create a {title}", tag, title, 201, f"{title}Create", errors=WRITE_ERRORS),
        Route(item, "GET", f"{res.name}_show", views.show_view(res), f"Show a {title}", tag,
              title),
        Route(item, "DELETE", f"{res.name}_delete", views.write_view("delete", res),
              f"Delete a {title}; returns the deleted row", tag, title, errors=WRITE_ERRORS),
    ]
    if res.updatable:
        routes.append(Route(item, "PUT", f"{res.name}_update", views.write_view("update", res),
                            f"Update a {title}", tag, title, request=f"{title}Update",
                            errors=WRITE_ERRORS))
    return routes


def _join_routes() -> list[Route]:
    routes = []
    for join in JOINS:
        res, title = join.resource, join.resource.title
        base = f"{PREFIX}/{join.parent}/<{join.parent_field}>/{join.child}"
        item = f"{base}/<{join.child_field}>"
        name = res.name
        routes += [
            Route(base, "GET", f"{name}_list", views.join_list_view(join),
                  f"List the {join.child} added to a {join.parent.removesuffix('s')}",
                  join.parent, f"{title}Page", page_of=res),
            Route(item, "GET", f"{name}_show", views.join_show_view(join), f"Show a {title}",
                  join.parent, title),
            Route(item, "POST", f"{name}_create", views.join_write_view("create", join, 201),
                  f"Add a {join.child.removesuffix('s')} to a {join.parent.removesuffix('s')}",
                  join.parent, title, 201, f"{title}Create", errors=WRITE_ERRORS),
            Route(item, "DELETE", f"{name}_delete", views.join_write_view("delete", join),
                  f"Remove a {join.child.removesuffix('s')} from a "
                  f"{join.parent.removesuffix('s')}", join.parent, title, errors=WRITE_ERRORS),
        ]
    return routes


def _listing_routes() -> list[Route]:
    routes = []
    for listing in LISTINGS:
        res = RESOURCES[listing.resource]
        routes.append(Route(
            f"{PREFIX}/{listing.parent}/<{listing.parent_field}>/{listing.resource}", "GET",
            f"{listing.parent}_{listing.resource}", views.listing_view(listing),
            f"List the {listing.resource} of a {listing.parent.removesuffix('s')}",
            listing.parent, f"{res.title}Page", page_of=res))
    return routes


def _nested_routes() -> list[Route]:
    routes = []
    for nested in NESTED:
        res, parent = RESOURCES[nested.resource], nested.parent.removesuffix("s")
        base = f"{PREFIX}/{nested.parent}/<{nested.parent_field}>/{nested.resource}"
        name, title = res.name, res.title
        routes += [
            Route(base, "GET", f"{name}_list", views.nested_list_view(nested),
                  f"List the {name} of a {parent}", nested.parent, f"{title}Page",
                  page_of=res),
            Route(base, "POST", f"{name}_create", views.nested_create_view(nested),
                  f"Add a {title} to a {parent}", nested.parent, title, 201,
                  f"{title}Create", errors=WRITE_ERRORS),
            Route(f"{base}/<uuid>", "GET", f"{name}_show", views.nested_show_view(nested),
                  f"Show a {title}", nested.parent, title),
            Route(f"{base}/<uuid>", "DELETE", f"{name}_delete",
                  views.nested_delete_view(nested),
                  f"Delete a {title}; returns the deleted row", nested.parent, title,
                  errors=WRITE_ERRORS),
        ]
    return routes


def api_routes() -> list[Route]:
    """All JSON routes except the OpenAPI document itself (added by webapi.app)."""
    routes = [Route(f"{PREFIX}/health", "GET", "health", views.health_view,
                    "Health of webapi, vnmgr and the database (503 if any is down)",
                    "service", "Health", errors=())]
    for name in TOP_LEVEL:
        routes += _resource_routes(RESOURCES[name])
    routes.append(Route(f"{PREFIX}/datapaths/<uuid>/status", "GET", "datapaths_status",
                        views.datapath_status_view,
                        "A datapath with the status its vna last reported to vnmgr",
                        "datapaths", "DatapathStatus"))
    return routes + _join_routes() + _listing_routes() + _nested_routes()
