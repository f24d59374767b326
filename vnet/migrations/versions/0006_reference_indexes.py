"""an index on every reference column that leads none (SQLite indexes no foreign key by
itself, so finding a row's leases, claims or joins scanned the whole table)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (table, column): the index is ix_<table>_<column>, as vnet.models declares it.
REFERENCES = (
    ("interfaces", "owner_datapath_id"),
    ("active_interfaces", "datapath_id"),
    ("datapath_networks", "network_id"),
    ("datapath_networks", "interface_id"),
    ("datapath_route_links", "route_link_id"),
    ("datapath_route_links", "interface_id"),
    ("filters", "interface_id"),
    ("interface_security_groups", "security_group_id"),
    ("mac_leases", "interface_id"),
    ("network_services", "interface_id"),
    ("routes", "interface_id"),
    ("routes", "route_link_id"),
    ("routes", "network_id"),
    ("translations", "interface_id"),
    ("ip_leases", "interface_id"),
    ("ip_leases", "mac_lease_id"),
    ("translation_static_addresses", "route_link_id"),
)


def upgrade() -> None:
    for table, column in REFERENCES:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in reversed(REFERENCES):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
