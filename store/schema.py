"""The Postgres schema, as SQLAlchemy Core tables. Changes go through Alembic migrations."""

from __future__ import annotations

from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

__all__ = [
    "MUTABLE",
    "SEARCH_TABLES",
    "aliases",
    "artefacts",
    "assets",
    "attachments",
    "attempts",
    "blob_references",
    "claims",
    "feature_catalogue",
    "feature_promotions",
    "feature_versions",
    "lineage",
    "metadata",
    "promotions",
    "runs",
    "search_cues",
    "search_indexed",
    "search_shots",
    "search_vectors",
    "values",
    "views",
]

metadata = MetaData()

assets = Table(
    "assets",
    metadata,
    Column("id", String(64), primary_key=True, comment="SHA-256 of the asset's bytes"),
    Column("size", BigInteger, nullable=False),
    Column("blob_key", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

aliases = Table(
    "aliases",
    metadata,
    Column("asset_id", String(64), ForeignKey("assets.id"), primary_key=True),
    Column("name", Text, primary_key=True, comment="a path or URI the bytes were ingested under"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_aliases_name", "name"),
)

feature_versions = Table(
    "feature_versions",
    metadata,
    Column("name", Text, primary_key=True),
    Column("version", Text, primary_key=True),
    Column("fingerprint", String(64), primary_key=True, comment="code fingerprint seen with this version"),
    Column("resources", Text, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column(
        "module",
        Text,
        primary_key=True,
        server_default="",
        comment="the Python module that defined the feature; '' before 0007",
    ),
    Column("output_type", Text, nullable=False, server_default="", comment="qualified name of the value's type"),
    Column("payload_kind", Text, nullable=False, server_default="", comment="json, array or file; '' before 0007"),
)

values = Table(
    "feature_values",
    metadata,
    Column("key", String(64), primary_key=True, comment="hash of feature, version, params, model, input keys"),
    Column("asset_id", String(64), ForeignKey("assets.id"), nullable=False),
    Column("feature", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("model_fingerprint", Text),
    Column("code_fingerprint", String(64), nullable=False),
    Column("payload_kind", Text, nullable=False),
    Column("blob_key", Text, nullable=False),
    Column("meta", JSONB, nullable=False),
    Column("shape", JSONB),
    Column("dtype", Text),
    Column("bytes", BigInteger, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("xxh3", String(16), comment="xxh3-64 of the blob's bytes, checked on read; NULL before 0005"),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("worker", Text, nullable=False),
    Column("device", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_feature_values_asset_feature", "asset_id", "feature", "version"),
    Index("ix_feature_values_feature", "feature", "version"),
)

lineage = Table(
    "lineage",
    metadata,
    Column("value_key", String(64), ForeignKey("feature_values.key"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("input_name", Text, nullable=False),
    Column("input_key", String(64), nullable=False, comment="a value key, or the asset id for 'source'"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("value_key", String(64), nullable=False),
    Column("asset_id", String(64), ForeignKey("assets.id"), nullable=False),
    Column("feature", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("error_type", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("retryable", Boolean, nullable=False),
    Column("worker", Text, nullable=False),
    Column("run_id", String(36)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_attempts_asset", "asset_id"),
)

claims = Table(
    "claims",
    metadata,
    Column("value_key", String(64), primary_key=True),
    Column("asset_id", String(64), nullable=False),
    Column("feature", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("worker", Text, nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("trigger", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("planned", Integer, nullable=False, server_default="0"),
    Column("computed", Integer, nullable=False, server_default="0"),
    Column("reused", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
)

# Append-only: attaching a file again (even older bytes) is a new row; the newest row wins (Store.attach).
attachments = Table(
    "attachments",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("asset_id", String(64), ForeignKey("assets.id"), nullable=False),
    Column("kind", Text, nullable=False, comment="what the file is, e.g. 'subtitles'"),
    Column("sha256", String(64), nullable=False),
    Column("language", Text, nullable=False, server_default="", comment="'' when unknown"),
    Column("name", Text, nullable=False, comment="the file name it was attached under"),
    Column("blob_key", Text, nullable=False),
    Column("attached_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_attachments_asset_kind", "asset_id", "kind", "attached_at"),
)

artefacts = Table(
    "artefacts",
    metadata,
    Column("id", String(64), primary_key=True, comment="SHA-256 of the artefact's bytes"),
    Column("kind", Text, nullable=False, comment="e.g. 'mediafm'"),
    Column("blob_key", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("meta", JSONB, nullable=False, comment="config, training-data fingerprint, metrics"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

promotions = Table(
    "promotions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("artefact_id", String(64), ForeignKey("artefacts.id"), nullable=False),
    Column("promoted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_promotions_kind", "kind", "promoted_at"),
)

feature_promotions = Table(
    "feature_promotions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("feature", Text, nullable=False),
    Column("version", Text, nullable=False, comment="the version default readers get from promoted_at on"),
    Column("promoted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_feature_promotions_feature", "feature", "promoted_at"),
)

# The search indexes: projections of stored values (features/indexes.py), written in the value's own transaction
# and rebuildable from the values at any time, so the application role may delete (rebuild) their rows.
search_vectors = Table(
    "search_vectors",
    metadata,
    Column("index_name", Text, primary_key=True),
    Column("value_key", String(64), ForeignKey("feature_values.key"), primary_key=True),
    Column("shot", Integer, primary_key=True),
    Column("version", Text, nullable=False, comment="the version of the value's feature"),
    Column("model_fingerprint", Text, comment="the model that made the vector: queries are encoded with the same"),
    Column("asset_id", String(64), nullable=False),
    Column("shots_key", String(64), comment="the shots value the shot index refers to (its times)"),
    Column("language", Text, comment="the language of the text the vector encodes (dialogue); else NULL"),
    Column("dims", Integer, nullable=False),
    Column("embedding", VECTOR(), nullable=False, comment="unit vector; HNSW per (index, version, dims)"),
    Index("ix_search_vectors_scope", "index_name", "version", "asset_id"),
)

search_cues = Table(
    "search_cues",
    metadata,
    Column("index_name", Text, primary_key=True),
    Column("value_key", String(64), ForeignKey("feature_values.key"), primary_key=True),
    Column("cue", Integer, primary_key=True),
    Column("version", Text, nullable=False),
    Column("asset_id", String(64), nullable=False),
    Column("shots_key", String(64)),
    Column("shot", Integer, nullable=False),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float, nullable=False),
    Column("language", Text),
    Column("text", Text, nullable=False),
    Column("document", TSVECTOR, Computed("to_tsvector('simple'::regconfig, text)", persisted=True)),
    Index("ix_search_cues_document", "document", postgresql_using="gin"),
    Index("ix_search_cues_scope", "index_name", "version", "asset_id"),
)

search_shots = Table(
    "search_shots",
    metadata,
    Column("index_name", Text, primary_key=True),
    Column("value_key", String(64), ForeignKey("feature_values.key"), primary_key=True),
    Column("shot", Integer, primary_key=True),
    Column("version", Text, nullable=False),
    Column("asset_id", String(64), nullable=False),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float, nullable=False),
    Index("ix_search_shots_scope", "index_name", "version", "asset_id", "start_time"),
)

search_indexed = Table(
    "search_indexed",
    metadata,
    Column("index_name", Text, primary_key=True),
    Column("value_key", String(64), ForeignKey("feature_values.key"), primary_key=True),
    Column("version", Text, nullable=False),
    Column("rows", Integer, nullable=False, comment="how many rows the value made (0: a shot-less value, say)"),
    Column("indexed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="every value an index holds, with its rows written in the same transaction: what `index status` checks",
)

SEARCH_TABLES = {"vector": search_vectors, "text": search_cues, "time": search_shots}

# Views live apart from ``metadata``, so that Alembic's autogenerate never takes them for tables.
views = MetaData()

blob_references = Table(
    "blob_references",
    views,
    Column("blob_key", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bytes", BigInteger, comment="NULL where the row does not record a size (attachments)"),
    Column("xxh3", String(16), comment="NULL where the row does not record one"),
    Column("source", Text, nullable=False, comment="the table of the row: assets, feature_values, ..."),
    Column("row_key", Text, nullable=False, comment="the row's key in that table"),
    Column("asset_id", String(64), comment="the asset the row belongs to; NULL for artefacts"),
    comment="every row that names a blob, one per (row, blob): what gc keeps and verify checks",
)

feature_catalogue = Table(
    "feature_catalogue",
    views,
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False, comment="the code fingerprint the values were computed by"),
    Column("params", JSONB, nullable=False),
    Column("model_fingerprint", Text),
    Column("payload_kind", Text, nullable=False, comment="json, array or file: how to decode without the code"),
    Column("output_type", Text, nullable=False, comment="qualified name of the value's type; '' if not recorded"),
    Column("module", Text, nullable=False, comment="the module that defined the feature; '' if not recorded"),
    Column("resources", Text, nullable=False, comment="'' if not recorded"),
    Column("value_count", BigInteger, nullable=False),
    Column("asset_count", BigInteger, nullable=False),
    Column("first_computed", DateTime(timezone=True), nullable=False),
    Column("last_computed", DateTime(timezone=True), nullable=False),
    comment="every feature version ever computed, one row per (version, code, params, model), derived from values",
)

# The only tables the application role may UPDATE or DELETE (store.database.migrate grants from this):
# who is computing what right now, a run's counts when it finishes, and the search indexes' projections. Every
# other table is read and appended to, never changed.
# The search tables are projections, rebuilt (deleted and derived again) by ``mediamesh index rebuild``.
MUTABLE = (claims, runs, search_vectors, search_cues, search_shots, search_indexed)
