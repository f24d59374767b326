"""routes' next hop, interfaces' route translation flag, ip leases' routing flag;
translations and their static addresses (OpenVNet's translations.rb)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _resource_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=260), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def _flag(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("routes") as batch:
        batch.add_column(sa.Column("ipv4_gateway", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("interfaces") as batch:
        batch.add_column(_flag("enable_route_translation"))
    with op.batch_alter_table("ip_leases") as batch:
        batch.add_column(_flag("enable_routing"))
    op.create_table(
        "translations",
        sa.Column("interface_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("passthrough", sa.Boolean(), nullable=False),
        *_resource_columns(),
        sa.ForeignKeyConstraint(["interface_id"], ["interfaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_table(
        "translation_static_addresses",
        sa.Column("translation_id", sa.Integer(), nullable=False),
        sa.Column("route_link_id", sa.Integer(), nullable=True),
        sa.Column("ingress_ipv4_address", sa.BigInteger(), nullable=False),
        sa.Column("egress_ipv4_address", sa.BigInteger(), nullable=False),
        sa.Column("ingress_port_number", sa.Integer(), nullable=True),
        sa.Column("egress_port_number", sa.Integer(), nullable=True),
        sa.Column("leased", sa.Boolean(), nullable=False),
        *_resource_columns(),
        sa.ForeignKeyConstraint(["translation_id"], ["translations.id"]),
        sa.ForeignKeyConstraint(["route_link_id"], ["route_links.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ingress_ipv4_address", "ingress_port_number"),
        sa.UniqueConstraint("translation_id", "egress_ipv4_address", "egress_port_number"),
        sa.UniqueConstraint("uuid"),
    )


def downgrade() -> None:
    op.drop_table("translation_static_addresses")
    op.drop_table("translations")
    with op.batch_alter_table("ip_leases") as batch:
        batch.drop_column("enable_routing")
    with op.batch_alter_table("interfaces") as batch:
        batch.drop_column("enable_route_translation")
    with op.batch_alter_table("routes") as batch:
        batch.drop_column("ipv4_gateway")
