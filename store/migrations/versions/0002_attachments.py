"""Attachments: files that come with an asset at ingest (subtitle sidecars), stored by content.

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
        "attachments",
        sa.Column("asset_id", sa.String(64), sa.ForeignKey("assets.id"), primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True, comment="what the file is, e.g. 'subtitles'"),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("language", sa.Text, nullable=False, server_default="", comment="'' when unknown"),
        sa.Column("name", sa.Text, nullable=False, comment="the file name it was attached under"),
        sa.Column("blob_key", sa.Text, nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )


def downgrade() -> None:
    op.drop_table("attachments")
