"""Where mediamesh keeps things, read from ``MEDIAMESH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["StoreSettings"]


class StoreSettings(BaseSettings):
    """Store configuration. With nothing set, everything is embedded under ``$MEDIAMESH_HOME``."""

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
