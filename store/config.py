"""Where mediamesh keeps things, read from ``MEDIAMESH_*`` environment variables, and from the dev stack
running in the home (its ``stack.json``) for what they leave unset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mediamesh.store.home import running_stack

__all__ = ["SearchSettings", "StoreSettings"]


class StoreSettings(BaseSettings):
    """Store configuration. With nothing set, everything is embedded under ``$MEDIAMESH_HOME``, or, while
    ``mediamesh dev-stack`` runs in that home, the stack's database and S3 (a variable that is set still wins).
    """

    model_config = SettingsConfigDict(env_prefix="MEDIAMESH_", extra="ignore")

    home: Path = Field(default=Path(".mediamesh"), description="Embedded Postgres, local blobs and caches.")
    database_url: str | None = Field(
        default=None, description="An external Postgres, as the application role; unset = embedded."
    )
    owner_database_url: str | None = Field(
        default=None, description="The same database as its owner role, for `mediamesh migrate` only."
    )
    object_store: str | None = Field(default=None, description="file:///path or s3://bucket/prefix; unset = local.")
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_secure: bool = False

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, _DevStackSource(settings_cls), file_secret_settings


# What stack.json holds under the names of the settings it supplies.
_FROM_STACK = ("database_url", "object_store", "s3_endpoint", "s3_access_key", "s3_secret_key")


class _DevStackSource(PydanticBaseSettingsSource):
    """The running dev stack's settings, read from ``$MEDIAMESH_HOME/stack.json`` (a file read, nothing more)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ supplies everything at once

    def __call__(self) -> dict[str, Any]:
        home = Path(self.current_state.get("home") or StoreSettings.model_fields["home"].default)
        info = running_stack(home.expanduser().resolve())
        if info is None:
            return {}
        return {name: info[name] for name in _FROM_STACK if info.get(name) is not None}


class SearchSettings(BaseSettings):
    """How the search indexes are built and searched (``MEDIAMESH_HNSW_*``, ``MEDIAMESH_SEARCH_MAX_K``)."""

    model_config = SettingsConfigDict(env_prefix="MEDIAMESH_", extra="ignore")

    hnsw_m: int = Field(default=16, ge=2, le=100, description="HNSW links per node (pgvector's m).")
    hnsw_ef_construction: int = Field(default=64, ge=4, le=1000, description="HNSW build candidate list.")
    hnsw_ef_search: int = Field(default=100, ge=1, le=1000, description="HNSW search candidate list (at least k).")
    dialogue_min_similarity: float = Field(
        default=0.5, ge=-1, le=1, description="Dialogue matched by meaning only at this cosine similarity or more."
    )
    hnsw_cross_ef_search: int = Field(
        default=20, ge=1, le=1000, description="HNSW candidate list per shot in cross-title match cut queries."
    )
    search_max_k: int = Field(default=1000, ge=1, le=10_000, description="The most hits one search may ask for.")
