"""active_interfaces: where each interface's port is, reported by the agents

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "active_interfaces",
        sa.Column("interface_id", sa.Integer(), nullable=False),
        sa.Column("datapath_id", sa.Integer(), nullable=False),
        sa.Column("port_name", sa.String(length=255), nullable=True),
        sa.Column("port_number", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("singular", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=260), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["datapath_id"], ["datapaths.id"]),
        sa.ForeignKeyConstraint(["interface_id"], ["interfaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interface_id", "datapath_id"),
        sa.UniqueConstraint("interface_id", "singular"),
        sa.UniqueConstraint("uuid"),
    )


def downgrade() -> None:
    op.drop_table("active_interfaces")
