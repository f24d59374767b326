"""The network model. vnmgr is its only writer; everything else reads.

Uniqueness that the issue tracker calls "enforced by the database" is declared here as
constraints, so even a bug in vnmgr's validation cannot store two equal MACs or two
equal addresses on one network.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vnet.registry import RESOURCES


def _now() -> datetime:
    # Whole seconds: MySQL/MariaDB DATETIME keeps no fraction, so a write's reply (built
    # from the in-memory row) and a later GET show the same value on every backend.
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


UUID_LEN = 260


class Base(DeclarativeBase):
    pass


class Resource(Base):
    __abstract__ = True
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(UUID_LEN), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=_now, onupdate=_now, nullable=False
    )


class Datapath(Resource):
    __tablename__ = "datapaths"
    display_name: Mapped[str | None] = mapped_column(String(255))
    dpid: Mapped[str] = mapped_column(String(18), unique=True, nullable=False)
    node_id: Mapped[str] = mapped_column(String(255), nullable=False)
    is_connected: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class Network(Resource):
    __tablename__ = "networks"
    display_name: Mapped[str | None] = mapped_column(String(255))
    ipv4_network: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ipv4_prefix: Mapped[int] = mapped_column(Integer, nullable=False)
    domain_name: Mapped[str | None] = mapped_column(String(255))
    network_mode: Mapped[str] = mapped_column(String(16), nullable=False, default="virtual")
    segment_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    mtu: Mapped[int | None] = mapped_column(Integer)


class Interface(Resource):
    __tablename__ = "interfaces"
    display_name: Mapped[str | None] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(16), nullable=False, default="vif")
    owner_datapath_id: Mapped[int | None] = mapped_column(ForeignKey("datapaths.id"))
    port_name: Mapped[str | None] = mapped_column(String(255))
    enable_routing: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # OpenVNet's security-group flag (its enable_legacy_filtering column) and its
    # static-filter flag.
    ingress_filtering_enabled: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False)
    enable_filtering: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False)
    # OpenVNet's: routed traffic that no translation of this router port matches is
    # dropped.
    enable_route_translation: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False)


class MacLease(Resource):
    __tablename__ = "mac_leases"
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id"), nullable=False)
    mac_address: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)


class IpLease(Resource):
    __tablename__ = "ip_leases"
    __table_args__ = (UniqueConstraint("network_id", "ipv4_address"),)
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id"), nullable=False)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), nullable=False)
    mac_lease_id: Mapped[int | None] = mapped_column(ForeignKey("mac_leases.id"))
    ipv4_address: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # OpenVNet's: an address routed through the interface (a translation's global
    # address), not the interface's own.
    enable_routing: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False)


class RouteLink(Resource):
    __tablename__ = "route_links"
    display_name: Mapped[str | None] = mapped_column(String(255))
    mac_address: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)


class Route(Resource):
    __tablename__ = "routes"
    display_name: Mapped[str | None] = mapped_column(String(255))
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id"), nullable=False)
    route_link_id: Mapped[int] = mapped_column(ForeignKey("route_links.id"), nullable=False)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), nullable=False)
    ipv4_network: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ipv4_prefix: Mapped[int] = mapped_column(Integer, nullable=False)
    ingress: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    egress: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # The next hop for the destination, on the route's network; NULL: deliver only to
    # addresses on the network.
    ipv4_gateway: Mapped[int | None] = mapped_column(BigInteger)


class SecurityGroup(Resource):
    __tablename__ = "security_groups"
    display_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    rules: Mapped[str | None] = mapped_column(Text)


class DatapathNetwork(Resource):
    __tablename__ = "datapath_networks"
    __table_args__ = (UniqueConstraint("datapath_id", "network_id"),)
    datapath_id: Mapped[int] = mapped_column(ForeignKey("datapaths.id"), nullable=False)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), nullable=False)
    broadcast_mac_address: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    interface_id: Mapped[int | None] = mapped_column(ForeignKey("interfaces.id"))


class DatapathRouteLink(Resource):
    __tablename__ = "datapath_route_links"
    __table_args__ = (UniqueConstraint("datapath_id", "route_link_id"),)
    datapath_id: Mapped[int] = mapped_column(ForeignKey("datapaths.id"), nullable=False)
    route_link_id: Mapped[int] = mapped_column(ForeignKey("route_links.id"), nullable=False)
    mac_address: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    interface_id: Mapped[int | None] = mapped_column(ForeignKey("interfaces.id"))


class InterfaceSecurityGroup(Resource):
    __tablename__ = "interface_security_groups"
    __table_args__ = (UniqueConstraint("interface_id", "security_group_id"),)
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id"), nullable=False)
    security_group_id: Mapped[int] = mapped_column(
        ForeignKey("security_groups.id"), nullable=False
    )


class ActiveInterface(Resource):
    """Where an interface's port is, as reported by the vna of the datapath where it
    appeared (OpenVNet's active_interfaces).  One row per (interface, datapath) claim:
    `state` is active (the binding every datapath forwards to), standby (the port is also
    there, but another datapath holds the binding until its port goes away) or refused
    (the interface's owner_datapath_uuid names another datapath).  `singular` is True on
    the active row and NULL otherwise, so the database allows one active row per
    interface (NULLs never collide in a unique constraint), as OpenVNet does."""

    __tablename__ = "active_interfaces"
    __table_args__ = (
        UniqueConstraint("interface_id", "datapath_id"),
        UniqueConstraint("interface_id", "singular"),
    )
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id"), nullable=False)
    datapath_id: Mapped[int] = mapped_column(ForeignKey("datapaths.id"), nullable=False)
    port_name: Mapped[str | None] = mapped_column(String(255))
    port_number: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    singular: Mapped[bool | None] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(String(255))


class NetworkService(Resource):
    """A service answered at the edge for a network (OpenVNet's network_services): its
    address is its simulated interface's lease on the network.  type: dhcp, dns or
    router."""

    __tablename__ = "network_services"
    display_name: Mapped[str | None] = mapped_column(String(255))
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id"), nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)


class DnsService(Resource):
    """The DNS side of a dns network service: its upstream resolvers (OpenVNet's
    dns_services)."""

    __tablename__ = "dns_services"
    display_name: Mapped[str | None] = mapped_column(String(255))
    network_service_id: Mapped[int] = mapped_column(
        ForeignKey("network_services.id"), unique=True, nullable=False
    )
    public_dns: Mapped[str | None] = mapped_column(String(255))


class DnsRecord(Resource):
    """A name a dns service answers (A, and PTR for its address)."""

    __tablename__ = "dns_records"
    __table_args__ = (UniqueConstraint("dns_service_id", "name", "ipv4_address"),)
    dns_service_id: Mapped[int] = mapped_column(ForeignKey("dns_services.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    ipv4_address: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ttl: Mapped[int] = mapped_column(Integer, nullable=False, default=60)


class Filter(Resource):
    """OpenVNet's filter of one interface: in mode static, its filter_statics decide, and
    what matches none passes or is dropped by ingress_passthrough/egress_passthrough."""

    __tablename__ = "filters"
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id"), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    ingress_passthrough: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    egress_passthrough: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class FilterStatic(Resource):
    """One static entry: traffic of `protocol` to or from ipv4_address/ipv4_prefix (and,
    for tcp/udp, port_number unless 0) passes or is dropped.  port_number is NULL for
    icmp, arp and all, so the unique constraint cannot see their duplicates: vnmgr
    refuses those."""

    __tablename__ = "filter_statics"
    __table_args__ = (UniqueConstraint("filter_id", "protocol", "ipv4_address", "ipv4_prefix",
                                       "port_number"),)
    filter_id: Mapped[int] = mapped_column(ForeignKey("filters.id"), nullable=False)
    protocol: Mapped[str] = mapped_column(String(8), nullable=False)
    ipv4_address: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ipv4_prefix: Mapped[int] = mapped_column(Integer, nullable=False)
    port_number: Mapped[int | None] = mapped_column(Integer)
    passthrough: Mapped[bool] = mapped_column(Boolean, nullable=False)


class Translation(Resource):
    """OpenVNet's translation of a router port on a physical network: mode
    static_address (its TranslationStaticAddress rows) or snat (ours: SNAT through the
    port's own address)."""

    __tablename__ = "translations"
    interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id"), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    passthrough: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class TranslationStaticAddress(Resource):
    """One 1:1 mapping: ingress (global, on the physical network) <-> egress (private)
    address, and ports when both are set. `leased`: vnmgr leased the ingress address to
    the translation's interface for this row and deletes that lease with it.  The ports
    are NULL without ports, so the unique constraints cannot see those duplicates:
    vnmgr refuses them."""

    __tablename__ = "translation_static_addresses"
    __table_args__ = (
        UniqueConstraint("ingress_ipv4_address", "ingress_port_number"),
        UniqueConstraint("translation_id", "egress_ipv4_address", "egress_port_number"),
    )
    translation_id: Mapped[int] = mapped_column(ForeignKey("translations.id"), nullable=False)
    route_link_id: Mapped[int | None] = mapped_column(ForeignKey("route_links.id"))
    ingress_ipv4_address: Mapped[int] = mapped_column(BigInteger, nullable=False)
    egress_ipv4_address: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ingress_port_number: Mapped[int | None] = mapped_column(Integer)
    egress_port_number: Mapped[int | None] = mapped_column(Integer)
    leased: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class Event(Base):
    """One row per committed change: its id is the sequence number agents follow."""

    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now, nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)


def _index_references() -> list[Index]:
    """An index `ix_<table>_<column>` on every reference column that leads no index or
    unique constraint yet: a row's leases, claims and joins are found by the id of the
    row they name, and SQLite (unlike InnoDB) indexes no foreign key by itself, so each
    such look-up scanned its table (a 10,000-interface create: 14 ms instead of 7).
    Migration 0006 builds the same indexes (tests/unit/test_model.py compares)."""
    made = []
    for table in Base.metadata.sorted_tables:
        led = {next(iter(index.columns)).name for index in table.indexes}
        led |= {next(iter(constraint.columns)).name for constraint in table.constraints
                if isinstance(constraint, UniqueConstraint) and constraint.columns}
        led |= {column.name for column in table.columns if column.unique or column.primary_key}
        for column in table.columns:
            if column.foreign_keys and column.name not in led:
                made.append(Index(f"ix_{table.name}_{column.name}", column))
    return made


REFERENCE_INDEXES = _index_references()

# Resource name -> class, for every resource of the registry (vnet.registry).
MODELS: dict[str, type[Resource]] = {name: globals()[resource.model_name]
                                     for name, resource in RESOURCES.items()}
