"""interfaces' filtering flags; filters and their static entries (OpenVNet's 0006_filters)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
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
    with op.batch_alter_table("interfaces") as batch:
        for name in ("ingress_filtering_enabled", "enable_filtering"):
            batch.add_column(sa.Column(name, sa.Boolean(), server_default=sa.false(),
                                       nullable=False))
    op.create_table(
        "filters",
        sa.Column("interface_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("ingress_passthrough", sa.Boolean(), nullable=False),
        sa.Column("egress_passthrough", sa.Boolean(), nullable=False),
        *_resource_columns(),
        sa.ForeignKeyConstraint(["interface_id"], ["interfaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_table(
        "filter_statics",
        sa.Column("filter_id", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("ipv4_address", sa.BigInteger(), nullable=False),
        sa.Column("ipv4_prefix", sa.Integer(), nullable=False),
        sa.Column("port_number", sa.Integer(), nullable=True),
        sa.Column("passthrough", sa.Boolean(), nullable=False),
        *_resource_columns(),
        sa.ForeignKeyConstraint(["filter_id"], ["filters.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("filter_id", "protocol", "ipv4_address", "ipv4_prefix",
                            "port_number"),
        sa.UniqueConstraint("uuid"),
    )


def downgrade() -> None:
    op.drop_table("filter_statics")
    op.drop_table("filters")
    with op.batch_alter_table("interfaces") as batch:
        batch.drop_column("enable_filtering")
        batch.drop_column("ingress_filtering_enabled")
