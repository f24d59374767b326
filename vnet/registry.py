"""The one resource registry: every resource, its uuid prefix, model, fields and links.

Everything that needs the list of resources reads it here: public ids (vnet.ids), the
model's name → class map (vnet.models.MODELS), serialisation (vnet.serialize), the
webapi's routes, filters and OpenAPI document, vnctl's commands and vnmgr's enums.
Adding a field here is the only change needed to accept, filter, serialise, document
and offer it on the command line.

Importing this module imports no SQLAlchemy (vnctl reads it and must start fast): a
resource names its model class as a string and `Resource.model` imports vnet.models on
first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vnet.models import Resource as ModelClass

# Field kinds: how a value is written on the wire and how a filter value is parsed.
KINDS = ("string", "integer", "boolean", "mac", "ipv4", "dpid", "ref", "datetime", "object")

# The enums of the model, defined once (vnmgr validates with them, the webapi documents
# them, vnctl offers them as choices). The first value is the default on create.
# An interface's binding as reported by the agents (vnet.models.ActiveInterface).
BINDING_STATES = ("active", "standby", "refused")
INTERFACE_MODES = ("vif", "simulated", "host", "patch", "remote")
NETWORK_MODES = ("virtual", "physical")

# Limits of written values, enforced by vnmgr and stated in the OpenAPI document.
TEXT_MAX_LEN = 255
RULES_MAX_LEN = 65535
UUID_MAX_LEN = 300  # prefix, "-" and up to 255 characters (vnet.ids), with some slack
NETWORK_PREFIX = (1, 32)  # OpenVNet's networks.rb: `in: 1..32`
ROUTE_PREFIX = (0, 32)  # OpenVNet's routes.rb: `in: 0..32`, so 0.0.0.0/0 can be routed
SEGMENT_ID = (1, 2**24 - 1)  # a VXLAN/GRE-sized tunnel key
MTU = (576, 9000)  # RFC 791 minimum datagram every host takes; jumbo frames at most
DNS_TTL = (0, 2**31 - 1)  # RFC 2181 §8
SERVICE_TYPES = ("dhcp", "dns", "router")  # OpenVNet's network_services modes
# OpenVNet's static filters (vnet/lib/vnet/constants/filter.rb, filter_static.rb).
FILTER_MODES = ("static",)
FILTER_PROTOCOLS = ("tcp", "udp", "icmp", "arp", "all")
FILTER_PORT = (0, 65535)  # 0: any port (OpenVNet's filter_static.rb: 0..0xffff)
FILTER_PREFIX = (0, 32)
# OpenVNet's translations (vnet/lib/vnet/constants/translation.rb: static_address) and
# ours, snat: SNAT through the router port's own address.
TRANSLATION_MODES = ("static_address", "snat")
TRANSLATION_PORT = (1, 65535)  # OpenVNet's `in: 1..65536` admitted 65536, no port

# List paging of the API: `?limit=` defaults to PAGE_DEFAULT and may not exceed PAGE_MAX.
PAGE_DEFAULT = 100
PAGE_MAX = 1000


@dataclass(frozen=True)
class Field:
    name: str
    kind: str = "string"
    ref: str | None = None  # referenced resource when kind == "ref"
    create: bool = False  # accepted by POST
    update: bool = False  # accepted by PUT
    required: bool = False  # required by POST
    nullable: bool = False
    enum: tuple[str, ...] | None = None
    description: str = ""
    schema: dict[str, Any] | None = None  # explicit JSON schema for kind == "object"
    stored: bool = True  # a column of the resource's own table (else derived when read)
    shown: bool = True  # a key of the rows (False: a write's parameter only)
    # Limits vnmgr enforces on a write (the OpenAPI document states them): inclusive
    # integer bounds, and the longest string.
    bounds: tuple[int, int] | None = None
    max_len: int = TEXT_MAX_LEN

    @property
    def column(self) -> str:
        """The model column behind the field: references are stored as integer ids."""
        if self.kind == "ref" and self.name != "uuid":
            return self.name.removesuffix("_uuid") + "_id"
        return self.name


@dataclass(frozen=True)
class Resource:
    name: str  # URL segment, table name and model key, e.g. "networks"
    title: str  # schema name in the OpenAPI document, e.g. "Network"
    prefix: str  # of public ids: "nw" for nw-xxxx
    model_name: str  # class in vnet.models, e.g. "Network"
    fields: tuple[Field, ...]
    updatable: bool = True
    description: str = ""
    # OpenVNet's names for our fields where they differ: (its name, our field). Accepted
    # on writes as that field; rows show our name.
    aliases: tuple[tuple[str, str], ...] = ()
    # OpenVNet parameters of features wakame-vnet does not implement: refused with a
    # message saying so, never dropped (a request that asked for them would silently
    # do less than the client meant).
    unsupported: tuple[str, ...] = ()

    @property
    def model(self) -> type[ModelClass]:
        """The SQLAlchemy class; imports vnet.models (and SQLAlchemy) on first use."""
        return getattr(importlib.import_module("vnet.models"), self.model_name)

    def all_fields(self) -> tuple[Field, ...]:
        return (*_common(self.name), *self.fields)

    def filterable(self) -> dict[str, Field]:
        """Fields backed by a column of this resource's own table (so `?f=v` is cheap).

        A row's own uuid is not a filter: it is named by the path (/networks/<uuid>).
        """
        return {f.name: f for f in self.all_fields()
                if f.stored and f.kind not in ("datetime", "object") and f.name != "uuid"}

    def field(self, name: str) -> Field | None:
        return next((f for f in self.all_fields() if f.name == name), None)

    def references(self) -> dict[str, Field]:
        """Stored reference fields by column: `network_id` -> network_uuid (ref networks)."""
        return {f.column: f for f in self.fields if f.kind == "ref" and f.stored}


@dataclass(frozen=True)
class Join:
    """A join row reached as /<parent>/<p>/<child>/<c>, e.g. /datapaths/dp-1/networks/nw-1;
    with `reverse`, also as /<child>/<c>/<parent>/<p> (the same row, handlers and
    errors), as OpenVNet's /security_groups/:sg/interfaces/:if next to
    /interfaces/:if/security_groups/:sg."""

    resource: Resource
    parent: str
    child: str
    reverse: bool = False

    @property
    def parent_field(self) -> str:
        return _singular(self.parent) + "_uuid"

    @property
    def child_field(self) -> str:
        return _singular(self.child) + "_uuid"

    @property
    def ends(self) -> tuple[str, str]:
        return self.parent_field, self.child_field


@dataclass(frozen=True)
class Listing:
    """/<parent>/<p>/<resource>: rows of `resource` linked to the parent through `through`
    (a resource whose rows hold both ids)."""

    parent: str
    resource: str
    through: str
    parent_column: str  # column of `through` holding the parent's id
    child_column: str  # column of `through` holding the listed row's id

    @property
    def parent_field(self) -> str:
        return _singular(self.parent) + "_uuid"


def _singular(name: str) -> str:
    return name.removesuffix("s")


def _common(resource: str) -> tuple[Field, ...]:
    return (
        Field("uuid", "ref", ref=resource, create=True,
              description="public id; chosen by the client or generated"),
        Field("id", "integer", description="database id, stable for the row's life"),
        Field("created_at", "datetime"),
        Field("updated_at", "datetime"),
    )


def _ref(name: str, ref: str, **kw: Any) -> Field:
    return Field(name, "ref", ref=ref, **kw)


def _name() -> Field:
    return Field("display_name", create=True, update=True, nullable=True)


_IP_LEASE_BRIEF = {"type": "object", "required": ["uuid", "network_uuid", "ipv4_address"],
                   "properties": {"uuid": {"type": "string"}, "network_uuid": {"type": "string"},
                                  "ipv4_address": {"type": "string"}}}
_BINDING = {
    "type": ["object", "null"], "required": ["state"],
    "description": "where the interface's port is (vif only): state bound or unbound, the "
                   "active datapath and port, and the other claims (standby, refused)",
    "properties": {
        "state": {"type": "string", "enum": ["bound", "unbound"]},
        "datapath_uuid": {"type": ["string", "null"]},
        "port_name": {"type": ["string", "null"]},
        "port_number": {"type": ["integer", "null"]},
        "detail": {"type": ["string", "null"]},
        "claims": {"type": "array", "items": {"type": "object", "properties": {
            "datapath_uuid": {"type": "string"}, "state": {"type": "string"},
            "port_name": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]},
        }}},
    }}
_MAC_LEASES = {"type": "array", "items": {
    "type": "object", "required": ["uuid", "mac_address", "ip_leases"],
    "properties": {"uuid": {"type": "string"}, "mac_address": {"type": "string"},
                   "ip_leases": {"type": "array", "items": _IP_LEASE_BRIEF}}}}

RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("datapaths", "Datapath", "dp", "Datapath", (
        _name(),
        Field("dpid", "dpid", create=True, update=True, required=True,
              description="OpenFlow datapath id, e.g. 0x0000aaaaaaaaaaaa"),
        Field("node_id", create=True, update=True, required=True,
              description="node_id of the vna that runs this datapath"),
        # Written by vnmgr alone, from its vna's status reports (vnmgr.liveness).
        Field("is_connected", "boolean",
              description="the datapath's vna reports its switch connected (read-only)"),
    ), description="Open vSwitch bridges run by a vna",
        unsupported=("enable_ovs_learn_action",)),
    Resource("networks", "Network", "nw", "Network", (
        _name(),
        Field("ipv4_network", "ipv4", create=True, required=True,
              description="first address; `a.b.c.d/nn` also sets ipv4_prefix"),
        Field("ipv4_prefix", "integer", create=True, description="default 24",
              bounds=NETWORK_PREFIX),
        Field("network_mode", create=True, enum=NETWORK_MODES),
        Field("domain_name", create=True, update=True, nullable=True),
        Field("segment_id", "integer", create=True, nullable=True,
              description="tunnel key; defaults to a free one", bounds=SEGMENT_ID),
        Field("mtu", "integer", create=True, update=True, nullable=True, bounds=MTU,
              description="MTU offered to VMs by DHCP (option 26); default: what fits the "
                          "transport on a 1500-byte underlay (1450 tunnel, 1500 mac2mac)"),
    ), aliases=(("mode", "network_mode"),), unsupported=("segment_uuid", "topology_uuid")),
    Resource("interfaces", "Interface", "if", "Interface", (
        _name(),
        Field("mode", create=True, update=True, enum=INTERFACE_MODES),
        _ref("owner_datapath_uuid", "datapaths", create=True, update=True, nullable=True),
        Field("port_name", create=True, update=True, nullable=True),
        Field("enable_routing", "boolean", create=True, update=True),
        Field("ingress_filtering_enabled", "boolean", create=True, update=True,
              description="OpenVNet's legacy filtering: only what the interface's security "
                          "groups admit reaches it, even with no group (joining a group "
                          "turns this on anyway; default false)"),
        Field("enable_filtering", "boolean", create=True, update=True,
              description="OpenVNet's filtering: the interface's static filters apply, both "
                          "ways, default drop (default false)"),
        Field("enable_route_translation", "boolean", create=True, update=True,
              description="OpenVNet's: traffic routed through this router port (simulated, "
                          "enable_routing) that no translation matches is dropped (default "
                          "false: untranslated traffic is routed unchanged)"),
        # Not columns of interfaces: the first lease's values, as OpenVNet shows them.
        Field("mac_address", "mac", create=True, nullable=True, stored=False,
              description="first MAC lease; generated when omitted on create"),
        _ref("network_uuid", "networks", create=True, nullable=True, stored=False,
             description="network of the first IP lease"),
        Field("ipv4_address", "ipv4", create=True, nullable=True, stored=False,
              description="first IP lease; allocated when network_uuid is given without it"),
        Field("mac_leases", "object", schema=_MAC_LEASES, stored=False),
        Field("binding", "object", schema=_BINDING, stored=False),
    ), unsupported=("segment_uuid", "mac_range_group_uuid")),
    Resource("mac_leases", "MacLease", "ml", "MacLease", (
        _ref("interface_uuid", "interfaces", create=True, required=True),
        Field("mac_address", "mac", create=True, description="generated when omitted"),
    ), updatable=False, unsupported=("segment_uuid",)),
    Resource("ip_leases", "IpLease", "il", "IpLease", (
        _ref("interface_uuid", "interfaces", create=True,
             description="required unless mac_lease_uuid names the interface's MAC lease"),
        _ref("network_uuid", "networks", create=True, required=True),
        _ref("mac_lease_uuid", "mac_leases", create=True, nullable=True),
        Field("ipv4_address", "ipv4", create=True, description="allocated when omitted"),
        Field("enable_routing", "boolean", create=True,
              description="OpenVNet's: an address routed through the interface (a "
                          "translation's global address), not its own (default false)"),
    ), updatable=False),
    Resource("route_links", "RouteLink", "rl", "RouteLink", (
        _name(),
        Field("mac_address", "mac", create=True, description="generated when omitted"),
    ), unsupported=("topology_uuid",)),
    Resource("routes", "Route", "r", "Route", (
        _name(),
        _ref("interface_uuid", "interfaces", create=True, required=True),
        _ref("route_link_uuid", "route_links", create=True, required=True),
        _ref("network_uuid", "networks", create=True,
             description="defaults to the interface's network"),
        Field("ipv4_network", "ipv4", create=True, description="defaults to the network's"),
        Field("ipv4_prefix", "integer", create=True, bounds=ROUTE_PREFIX,
              description="defaults to the network's when ipv4_network is the network's, "
                          "else 24"),
        Field("ingress", "boolean", create=True, update=True),
        Field("egress", "boolean", create=True, update=True),
        Field("ipv4_gateway", "ipv4", create=True, update=True, nullable=True,
              description="next hop for the destination: a host address on the route's "
                          "network; null: the route delivers only to addresses on it"),
    )),
    Resource("security_groups", "SecurityGroup", "sg", "SecurityGroup", (
        _name(),
        Field("description", create=True, update=True, nullable=True),
        Field("rules", create=True, update=True, nullable=True, max_len=RULES_MAX_LEN,
              description="one rule protocol:port:source per line or comma, `#` comments "
                          "(vnet/sg_rules.py); a source sg-... must exist"),
    )),
    Resource("filters", "Filter", "fil", "Filter", (
        _ref("interface_uuid", "interfaces", create=True, required=True,
             description="a mode=vif interface"),
        Field("mode", create=True, required=True, enum=FILTER_MODES),
        Field("ingress_passthrough", "boolean", create=True, update=True,
              description="what reaches the interface and matches no static: pass (true) "
                          "or drop (false, the default)"),
        Field("egress_passthrough", "boolean", create=True, update=True,
              description="what the interface sends and matches no static: pass (true) or "
                          "drop (false, the default)"),
    ), description="OpenVNet's static filters of an interface"),
    Resource("filter_statics", "FilterStatic", "fs", "FilterStatic", (
        _ref("filter_uuid", "filters", create=True, required=True),
        Field("protocol", create=True, required=True, enum=FILTER_PROTOCOLS),
        Field("ipv4_address", "ipv4", create=True,
              description="the peer: an address or a.b.c.d/n (host bits cleared), default "
                          "0.0.0.0/0; shown as the network address"),
        Field("ipv4_prefix", "integer", bounds=FILTER_PREFIX,
              description="from ipv4_address (32 for a plain address)"),
        Field("port_number", "integer", create=True, nullable=True, bounds=FILTER_PORT,
              description="tcp/udp only: the port, 0 (the default) for any; null for the "
                          "other protocols"),
        Field("passthrough", "boolean", create=True, required=True,
              description="true: pass what matches; false: drop it"),
    ), updatable=False, description="Static filter entries of a filter"),
    Resource("translations", "Translation", "tr", "Translation", (
        _ref("interface_uuid", "interfaces", create=True, required=True,
             description="a router port on a physical network: mode simulated, "
                         "enable_routing, an address on a network_mode=physical network and "
                         "an owner_datapath_uuid"),
        Field("mode", create=True, required=True, enum=TRANSLATION_MODES,
              description="static_address: its static addresses (1:1 NAT); snat: SNAT "
                          "through the port's own address (one per interface)"),
        Field("passthrough", "boolean", create=True,
              description="route what no static address matches unchanged (default false)"),
    ), updatable=False, description="OpenVNet's translations of a router port"),
    Resource("translation_static_addresses", "TranslationStaticAddress", "tsa",
             "TranslationStaticAddress", (
                 _ref("translation_uuid", "translations", create=True, required=True),
                 _ref("route_link_uuid", "route_links", create=True, nullable=True,
                      description="inbound traffic enters this route link directly"),
                 Field("ingress_ipv4_address", "ipv4", create=True, required=True,
                       description="the global address: a host address on the "
                                   "translation's physical network, leased to its interface"),
                 Field("egress_ipv4_address", "ipv4", create=True, required=True,
                       description="the private address, outside the physical network"),
                 Field("ingress_port_number", "integer", create=True, nullable=True,
                       bounds=TRANSLATION_PORT, description="with egress_port_number: "
                                                            "TCP and UDP of this port only"),
                 Field("egress_port_number", "integer", create=True, nullable=True,
                       bounds=TRANSLATION_PORT, description="with ingress_port_number"),
                 Field("leased", "boolean",
                       description="vnmgr leased ingress_ipv4_address to the interface for "
                                   "this entry, and releases it with it"),
                 _ref("ingress_network_uuid", "networks", create=True, stored=False,
                      shown=False, description="OpenVNet's: checked to be the physical "
                                               "network, not stored"),
                 _ref("egress_network_uuid", "networks", create=True, stored=False,
                      shown=False, description="OpenVNet's: checked to hold "
                                               "egress_ipv4_address, not stored"),
             ), updatable=False, description="Static addresses (1:1 NAT) of a translation"),
    Resource("datapath_networks", "DatapathNetwork", "dpn", "DatapathNetwork", (
        _ref("datapath_uuid", "datapaths"),
        _ref("network_uuid", "networks"),
        Field("broadcast_mac_address", "mac", create=True,
              description="generated when omitted; OpenVNet 0.9+ names it mac_address"),
        _ref("interface_uuid", "interfaces", create=True, nullable=True,
             description="the datapath's host interface on this network"),
    ), updatable=False, aliases=(("mac_address", "broadcast_mac_address"),)),
    Resource("datapath_route_links", "DatapathRouteLink", "dprl", "DatapathRouteLink", (
        _ref("datapath_uuid", "datapaths"),
        _ref("route_link_uuid", "route_links"),
        Field("mac_address", "mac", create=True, description="generated when omitted"),
        _ref("interface_uuid", "interfaces", create=True, nullable=True),
    ), updatable=False),
    Resource("network_services", "NetworkService", "ns", "NetworkService", (
        _name(),
        _ref("interface_uuid", "interfaces", create=True, required=True,
             description="a mode=simulated interface with an IP lease: the service's "
                         "address"),
        Field("type", create=True, required=True, enum=SERVICE_TYPES),
    ), aliases=(("mode", "type"),), description="DHCP, DNS or router answered at the edge"),
    Resource("dns_services", "DnsService", "dnss", "DnsService", (
        _name(),
        _ref("network_service_uuid", "network_services", create=True, required=True,
             description="a network service of type dns"),
        Field("public_dns", create=True, update=True, nullable=True,
              description="comma-separated upstream resolvers (IPv4); empty: none"),
    )),
    Resource("dns_records", "DnsRecord", "dnsr", "DnsRecord", (
        _ref("dns_service_uuid", "dns_services", create=True, required=True),
        Field("name", create=True, required=True, max_len=253,
              description="a host name (RFC 1123), answered as is and under the "
                          "network's domain_name"),
        Field("ipv4_address", "ipv4", create=True, required=True),
        Field("ttl", "integer", create=True, bounds=DNS_TTL, description="default 60"),
    ), updatable=False),
    # Written only by the agents' port reports (vnmgr.handlers.bindings); no routes of its
    # own: the API shows it as the interface's `binding`.
    Resource("active_interfaces", "ActiveInterface", "ai", "ActiveInterface", (
        _ref("interface_uuid", "interfaces"),
        _ref("datapath_uuid", "datapaths"),
        Field("port_name", nullable=True),
        Field("port_number", "integer", nullable=True),
        Field("state", enum=BINDING_STATES),
        Field("singular", "boolean", nullable=True),
        Field("detail", nullable=True),
    ), updatable=False),
    Resource("interface_security_groups", "InterfaceSecurityGroup", "isg",
             "InterfaceSecurityGroup", (
                 _ref("interface_uuid", "interfaces"),
                 _ref("security_group_uuid", "security_groups"),
             ), updatable=False),
)}

# Resources with the full top-level CRUD set (join rows are reached through their parent).
TOP_LEVEL = ("datapaths", "networks", "interfaces", "mac_leases", "ip_leases", "route_links",
             "routes", "security_groups", "network_services", "dns_services", "filters",
             "translations")


@dataclass(frozen=True)
class Nested:
    """Rows that live under one parent row and are only reached through it:
    /<parent>/<p>/<resource>[/<uuid>] (OpenVNet's dns_services/:uuid/dns_records)."""

    parent: str
    resource: str
    # URL segments under the parent, the first one canonical; default: the resource name.
    paths: tuple[str, ...] = ()
    # Fields that name one row on DELETE of the collection path (OpenVNet's
    # DELETE /filters/:uuid/static with the POST's parameters).
    delete_by: tuple[str, ...] = ()

    @property
    def parent_field(self) -> str:
        """The child's reference to its parent, taken from the path."""
        return _singular(self.parent) + "_uuid"

    @property
    def segments(self) -> tuple[str, ...]:
        return self.paths or (self.resource,)


NESTED: tuple[Nested, ...] = (
    Nested("dns_services", "dns_records"),
    # OpenVNet's path is /filters/:uuid/static; `static_filter` is its other spelling.
    Nested("filters", "filter_statics", ("static", "static_filter"),
           delete_by=("protocol", "ipv4_address", "port_number", "passthrough")),
    # OpenVNet's POST/DELETE /translations/:uuid/static_address.
    Nested("translations", "translation_static_addresses", ("static_address",),
           delete_by=("ingress_ipv4_address", "egress_ipv4_address", "ingress_port_number",
                      "egress_port_number", "route_link_uuid", "ingress_network_uuid",
                      "egress_network_uuid")),
)

# Resources only the agents write (through vnmgr); the API shows them inside other rows.
INTERNAL = ("active_interfaces",)

JOINS: tuple[Join, ...] = (
    Join(RESOURCES["datapath_networks"], "datapaths", "networks"),
    Join(RESOURCES["datapath_route_links"], "datapaths", "route_links"),
    Join(RESOURCES["interface_security_groups"], "interfaces", "security_groups",
         reverse=True),
)

LISTINGS: tuple[Listing, ...] = (
    Listing("networks", "interfaces", "ip_leases", "network_id", "interface_id"),
    Listing("security_groups", "interfaces", "interface_security_groups", "security_group_id",
            "interface_id"),
)


def accepted(op: str, resource: str) -> frozenset[str]:
    """The parameter names (ours, aliases resolved) a write accepts: `create` the fields
    marked create, `update` those marked update, `delete` none; a join's two ends and a
    nested row's parent (named by its path) are accepted by its create and delete, and a
    nested row's `delete_by` fields by its delete."""
    res = RESOURCES[resource]
    if op == "create":
        names = {f.name for f in res.all_fields() if f.create}
    elif op == "update":
        names = {f.name for f in res.all_fields() if f.update}
    else:
        names = set()
    for join in JOINS:
        if join.resource.name == resource:
            names.update(join.ends)
    for nested in NESTED:
        if nested.resource == resource:
            names.add(nested.parent_field)
            if op == "delete":
                names.update(nested.delete_by)
    return frozenset(names)
