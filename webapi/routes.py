"""Every route of the service, derived from the resource registry (vnet.registry).

The same list registers the Flask url rules (webapi.app) and describes the paths of the
OpenAPI document (webapi.openapi), so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from vnet.registry import JOINS, LISTINGS, NESTED, RESOURCES, TOP_LEVEL, Join, Nested, Resource
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
    resource: str | None = None  # writes: the resource whose vnmgr handler answers
    media_type: str = "text/plain"  # of a success body that is not JSON (response None)


def _write(rule: str, method: str, endpoint: str, view: View, summary: str, tag: str,
           resource: Resource, status: int = 200, request: str | None = None) -> Route:
    """A write route: answered by vnmgr's handler of `resource`, with the row."""
    return Route(rule, method, endpoint, view, summary, tag, resource.title, status, request,
                 errors=WRITE_ERRORS, resource=resource.name)


def _resource_routes(res: Resource) -> list[Route]:
    base, item, title, tag = f"{PREFIX}/{res.name}", f"{PREFIX}/{res.name}/<uuid>", \
        res.title, res.name
    routes = [
        Route(base, "GET", f"{res.name}_list", views.list_view(res), f"List {res.name}", tag,
              f"{title}Page", page_of=res),
        _write(base, "POST", f"{res.name}_create", views.write_view("create", res, 201),
               f"Create a {title}", tag, res, 201, f"{title}Create"),
        Route(item, "GET", f"{res.name}_show", views.show_view(res), f"Show a {title}", tag,
              title),
        _write(item, "DELETE", f"{res.name}_delete", views.write_view("delete", res),
               f"Delete a {title}; returns the deleted row", tag, res),
    ]
    if res.updatable:
        routes.append(_write(item, "PUT", f"{res.name}_update",
                             views.write_view("update", res), f"Update a {title}", tag, res,
                             request=f"{title}Update"))
    return routes


def _join_item_routes(join: Join, reverse: bool = False) -> list[Route]:
    """GET, POST and DELETE of one join row, under its parent or (reverse) under its
    child: the same views, which read both ends by name from the path."""
    res, title = join.resource, join.resource.title
    (first, first_field), (second, second_field) = (
        (join.parent, join.parent_field), (join.child, join.child_field))
    if reverse:
        (first, first_field), (second, second_field) = (
            (second, second_field), (first, first_field))
    item = f"{PREFIX}/{first}/<{first_field}>/{second}/<{second_field}>"
    name = res.name + (f"_via_{join.child}" if reverse else "")
    member, owner = join.child.removesuffix("s"), join.parent.removesuffix("s")
    return [
        Route(item, "GET", f"{name}_show", views.join_show_view(join), f"Show a {title}",
              first, title),
        _write(item, "POST", f"{name}_create", views.join_write_view("create", join, 201),
               f"Add a {member} to a {owner}", first, res, 201, f"{title}Create"),
        _write(item, "DELETE", f"{name}_delete", views.join_write_view("delete", join),
               f"Remove a {member} from a {owner}", first, res),
    ]


def _join_routes() -> list[Route]:
    routes = []
    for join in JOINS:
        res = join.resource
        base = f"{PREFIX}/{join.parent}/<{join.parent_field}>/{join.child}"
        routes.append(Route(base, "GET", f"{res.name}_list", views.join_list_view(join),
                            f"List the {join.child} added to a "
                            f"{join.parent.removesuffix('s')}",
                            join.parent, f"{res.title}Page", page_of=res))
        routes += _join_item_routes(join)
        if join.reverse:
            routes += _join_item_routes(join, reverse=True)
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
        for segment in nested.segments:
            routes += _nested_segment_routes(nested, segment)
    return routes


def _nested_segment_routes(nested: Nested, segment: str) -> list[Route]:
    """The routes of nested rows under one of their URL segments; the endpoints of a
    segment other than the canonical one are suffixed with it."""
    res, parent = RESOURCES[nested.resource], nested.parent.removesuffix("s")
    base = f"{PREFIX}/{nested.parent}/<{nested.parent_field}>/{segment}"
    name, title = res.name, res.title
    if segment != nested.segments[0]:
        name += f"_{segment}"
    routes = [
        Route(base, "GET", f"{name}_list", views.nested_list_view(nested),
              f"List the {res.name} of a {parent}", nested.parent, f"{title}Page",
              page_of=res),
        _write(base, "POST", f"{name}_create", views.nested_write_view("create", nested, 201),
               f"Add a {title} to a {parent}", nested.parent, res, 201, f"{title}Create"),
        Route(f"{base}/<uuid>", "GET", f"{name}_show", views.nested_show_view(nested),
              f"Show a {title}", nested.parent, title),
        _write(f"{base}/<uuid>", "DELETE", f"{name}_delete",
               views.nested_delete_view(nested),
               f"Delete a {title}; returns the deleted row", nested.parent, res),
    ]
    if nested.delete_by:
        routes.append(_write(base, "DELETE", f"{name}_delete_match",
                             views.nested_write_view("delete", nested),
                             f"Delete the {title} the parameters name (those of its POST); "
                             "returns the deleted row", nested.parent, res,
                             request=f"{title}Match"))
    return routes


def api_routes() -> list[Route]:
    """All JSON routes except the OpenAPI document itself (added by webapi.app)."""
    routes = [Route(f"{PREFIX}/health", "GET", "health", views.health_view,
                    "Health of webapi, vnmgr, the database (503 if one is down) "
                    "and the datapaths (degraded if one is disconnected)",
                    "service", "Health", errors=())]
    for name in TOP_LEVEL:
        routes += _resource_routes(RESOURCES[name])
    routes.append(Route(f"{PREFIX}/datapaths/<uuid>/status", "GET", "datapaths_status",
                        views.datapath_status_view,
                        "A datapath with the status its vna last reported to vnmgr",
                        "datapaths", "DatapathStatus"))
    return routes + _join_routes() + _listing_routes() + _nested_routes()
