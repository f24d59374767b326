"""What a vnctl verb acts on: a top-level resource (`networks/<uuid>`) or a join row
reached through its parent (`datapaths/<dp>/networks/<nw>`). Verbs only see a Target,
so one builder per verb serves every resource."""

from __future__ import annotations

from dataclasses import dataclass

from vnet.registry import JOINS, NESTED, RESOURCES, TOP_LEVEL, Field, Join, Nested, Resource


@dataclass(frozen=True)
class Target:
    resource: Resource  # the rows' type, whose fields become options and columns
    name: str  # command group name
    parent: str | None = None  # joins: the parent collection, e.g. "datapaths"
    parent_field: str | None = None  # e.g. "datapath_uuid" (argument metavar)
    item_field: str = "uuid"  # what names one row on the command line
    nested: bool = False  # a row under its parent (dns_records), not a join of two rows
    # The rows `show` lists when they are not `resource`'s: a reverse join's collection
    # is a listing of the other end (security_groups/<sg>/interfaces lists interfaces).
    listed: Resource | None = None
    delete_by: tuple[str, ...] = ()  # fields naming a nested row on `del` without uuids

    @classmethod
    def of_resource(cls, resource: Resource) -> Target:
        return cls(resource, resource.name)

    @classmethod
    def of_join(cls, join: Join) -> Target:
        return cls(join.resource, join.child, join.parent, join.parent_field, join.child_field)

    @classmethod
    def of_reverse_join(cls, join: Join) -> Target:
        return cls(join.resource, join.parent, join.child, join.child_field, join.parent_field,
                   listed=RESOURCES[join.parent])

    @classmethod
    def of_nested(cls, nested: Nested) -> Target:
        return cls(RESOURCES[nested.resource], nested.segments[0], nested.parent,
                   nested.parent_field, nested=True, delete_by=nested.delete_by)

    @property
    def rows(self) -> Resource:
        """The resource of the rows `show` lists."""
        return self.listed or self.resource

    @property
    def is_join(self) -> bool:
        return self.parent is not None and not self.nested

    def collection(self, parent: str | None) -> str:
        return f"{self.parent}/{parent}/{self.name}" if self.parent else self.name

    def item(self, parent: str | None, item: str) -> str:
        return f"{self.collection(parent)}/{item}"

    def fields(self, *, create: bool = False, update: bool = False) -> list[Field]:
        return [f for f in self.resource.all_fields()
                if ((create and f.create) or (update and f.update))
                and f.name != self.parent_field]  # the parent is an argument

    def match_fields(self) -> list[Field]:
        """The options of `del` without uuids: the fields that name the row."""
        return [f for f in self.resource.all_fields() if f.name in self.delete_by]

    def filters(self) -> list[Field]:
        """List filters; the ends already named on the command line are left out."""
        named = {"id", "uuid", self.parent_field}
        return [f for f in self.rows.filterable().values() if f.name not in named]


def top_level() -> list[Target]:
    return [Target.of_resource(RESOURCES[name]) for name in TOP_LEVEL]


def children_of(parent: str) -> list[Target]:
    """The joins and nested rows reached through a parent's rows."""
    return ([Target.of_join(j) for j in JOINS if j.parent == parent]
            + [Target.of_reverse_join(j) for j in JOINS if j.reverse and j.child == parent]
            + [Target.of_nested(n) for n in NESTED if n.parent == parent])
