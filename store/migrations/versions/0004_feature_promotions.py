"""Feature promotions: which version of a feature default readers get, as an append-only history.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_promotions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("feature", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False, comment="the version default readers get from promoted_at on"),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_index("ix_feature_promotions_feature", "feature_promotions", ["feature", "promoted_at"])
    # The newest row is the promotion in force; rolling back is another row, so history is never rewritten.
    op.execute(
        "CREATE TRIGGER feature_promotions_immutable BEFORE UPDATE OR DELETE ON feature_promotions "
        "FOR EACH ROW EXECUTE FUNCTION mediamesh_reject_mutation()"
    )
    op.execute(
        "CREATE TRIGGER feature_promotions_no_truncate BEFORE TRUNCATE ON feature_promotions "
        "FOR EACH STATEMENT EXECUTE FUNCTION mediamesh_reject_mutation()"
    )


def downgrade() -> None:
    op.drop_table("feature_promotions")
