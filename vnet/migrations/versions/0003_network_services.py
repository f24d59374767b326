"""network services (dhcp, dns, router), dns services and records; networks.mtu

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _resource_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=260), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.add_column(sa.Column("mtu", sa.Integer(), nullable=True))
    op.create_table(
        "network_services",
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("interface_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        *_resource_columns(),
        sa.ForeignKeyConstraint(["interface_id"], ["interfaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_table(
        "dns_services",
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("network_service_id", sa.Integer(), nullable=False),
        sa.Column("public_dns", sa.String(length=255), nullable=True),
        *_resource_columns(),
        sa.ForeignKeyConstraint(["network_service_id"], ["network_services.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_service_id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_table(
        "dns_records",
        sa.Column("dns_service_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ipv4_address", sa.BigInteger(), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=False),
        *_resource_columns(),
        sa.ForeignKeyConstraint(["dns_service_id"], ["dns_services.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dns_service_id", "name", "ipv4_address"),
        sa.UniqueConstraint("uuid"),
    )


def downgrade() -> None:
    op.drop_table("dns_records")
    op.drop_table("dns_services")
    op.drop_table("network_services")
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("mtu")
