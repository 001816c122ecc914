"""Resolving a configured model to a copy on this machine, and the fingerprint that names it.

Nothing here downloads: a model that is not on this machine resolves to ``available=False``, so
planning goes on, and only loading it raises :class:`ModelUnavailableError`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mediamesh.features.errors import ExecutionError
from mediamesh.features.models.fingerprints import directory_fingerprint
from mediamesh.features.models.settings import ROLES, Kind, Role, encoder_settings

__all__ = [
    "ModelRef",
    "ModelUnavailableError",
    "encoder_summary",
    "model_fingerprint",
    "pretrained_available",
    "resolve_model",
]

_ROLE_KINDS: dict[Role, Kind] = {"video": "clip", "audio": "wav2vec2", "text": "sentence-transformer"}


class ModelUnavailableError(ExecutionError):
    """The configured model is not on this machine; configuring another one is the fix, not a retry."""


@dataclass(frozen=True)
class ModelRef:
    """A configured model, resolved on this machine.

    ``source`` is the id or path as configured; ``path`` the local directory to load from (None when the
    model is not available, and for the model-free ``lite`` kind).
    """

    role: Role
    source: str
    kind: Kind
    fingerprint: str
    available: bool
    path: Path | None = None

    @property
    def short_fingerprint(self) -> str:
        """The fingerprint as a person reads it: 12 hex digits, a commit, or 'unavailable'."""
        if not self.available:
            return "unavailable"
        if self.kind == "lite":
            return self.fingerprint
        return self.fingerprint.rpartition("@")[2][:12]


def resolve_model(role: Role) -> ModelRef:
    """The model configured for ``role``, found on this machine or marked unavailable; never downloads."""
    if role not in ROLES:
        raise ValueError(f"unknown encoder role {role!r}: expected one of {', '.join(ROLES)}")
    settings = encoder_settings()
    if settings.encoders == "lite" and role != "text":
        return ModelRef(role, "lite", "lite", f"lite-{role}-v1", available=True)
    source, kind = settings.source(role), _ROLE_KINDS[role]
    local = Path(source).expanduser()
    if local.is_dir():
        local = local.resolve()
        return ModelRef(role, source, kind, directory_fingerprint(local), available=True, path=local)
    if _looks_like_path(source):
        return ModelRef(role, source, kind, f"unavailable:{source}", available=False)
    snapshot = _cached_snapshot(source)
    if snapshot is None:
        return ModelRef(role, source, kind, f"unavailable:{source}", available=False)
    repo_id = source.partition("@")[0]
    return ModelRef(role, source, kind, f"{repo_id}@{snapshot.name}", available=True, path=snapshot)


def model_fingerprint(role: Role) -> str:
    """The fingerprint of the model configured for ``role``: the ``model=`` hook of the encoder features."""
    return resolve_model(role).fingerprint


def pretrained_available() -> bool:
    """Whether the video and audio encoders resolve to pretrained models present on this machine."""
    refs = [resolve_model("video"), resolve_model("audio")]
    return all(ref.available and ref.kind != "lite" for ref in refs)


def encoder_summary() -> dict[str, str]:
    """Role -> ``"kind source (fingerprint)"``, as ``mediamesh info`` shows it."""
    return {
        role: f"{ref.kind} {ref.source} ({ref.short_fingerprint})" for role in ROLES for ref in [resolve_model(role)]
    }


def _looks_like_path(source: str) -> bool:
    """Whether ``source`` can only be a path (a hub id is ``owner/name``, never absolute or dotted)."""
    return source.startswith(("/", "./", "../", "~", ".\\")) or source.endswith(("/", "\\"))


def _cached_snapshot(source: str) -> Path | None:
    """The snapshot directory of hub id ``source`` (``id`` or ``id@revision``) in the local cache, or None."""
    repo_id, _, revision = source.partition("@")
    # Without the repository's cache folder there is nothing to find, and no need to import huggingface_hub
    # (half a second, on every `status`).
    if not (_hub_cache() / f"models--{repo_id.replace('/', '--')}").is_dir():
        return None
    from huggingface_hub import snapshot_download

    try:
        found = snapshot_download(repo_id, revision=revision or None, local_files_only=True)
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), or not a valid repo id
        return None
    return Path(found)


def _hub_cache() -> Path:
    """Where huggingface_hub keeps its cache: its own setting once it is imported, else the variables it reads."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        return Path(constants.HF_HUB_CACHE)
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.path.expandvars(os.environ[name])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "huggingface" / "hub"
