"""Artefacts (trained checkpoints) stored by content, and which one is promoted for each kind.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artefacts",
        sa.Column("id", sa.String(64), primary_key=True, comment="SHA-256 of the artefact's bytes"),
        sa.Column("kind", sa.Text, nullable=False, comment="e.g. 'mediafm'"),
        sa.Column("blob_key", sa.Text, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("meta", JSONB, nullable=False, comment="config, training-data fingerprint, metrics"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("artefact_id", sa.String(64), sa.ForeignKey("artefacts.id"), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_index("ix_promotions_kind", "promotions", ["kind", "promoted_at"])


def downgrade() -> None:
    op.drop_table("promotions")
    op.drop_table("artefacts")
