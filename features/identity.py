"""Value identity: a key that follows from what produced a value, and from nothing else."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MEDIAFM", "SOURCE", "SUBTITLES", "TITLE", "KeyPrefix", "attachment_set_key", "value_key"]

#: The reserved input name of the ingested media itself, the root of every feature graph.
SOURCE = "source"
#: The reserved input name of the subtitle files attached to an asset at ingest (often none).
SUBTITLES = "subtitles"
#: The reserved input name of the title's metadata (title, synopsis, tags), given at ingest.
TITLE = "title"
#: The reserved input name of the promoted MediaFM checkpoint (the same for every asset).
MEDIAFM = "mediafm"


def value_key(
    feature: str,
    version: str,
    params: Mapping[str, Any],
    model_fingerprint: str | None,
    input_keys: Sequence[str],
) -> str:
    """SHA-256 of (feature name, version, params, model fingerprint, input keys in parameter order).

    No run ids, timestamps or source text: the same inputs through the same feature version always give
    the same key, so a whole plan's keys are known before any work runs.
    """
    return KeyPrefix(feature, version, params, model_fingerprint).key(input_keys)


class KeyPrefix:
    """The part of a value's identity shared by every asset (feature, version, params, model), encoded once,
    so that planning many assets hashes only ``prefix | input keys`` per value."""

    __slots__ = ("_prefix",)

    def __init__(self, feature: str, version: str, params: Mapping[str, Any], model_fingerprint: str | None) -> None:
        identity = {"feature": feature, "version": version, "params": dict(params), "model": model_fingerprint}
        self._prefix = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "|"

    def key(self, input_keys: Sequence[str]) -> str:
        return hashlib.sha256((self._prefix + ",".join(input_keys)).encode()).hexdigest()


def attachment_set_key(kind: str, files: Sequence[tuple[str | None, str]], asset: str | None = None) -> str:
    """The key of a root input made of attached files: their (language, SHA-256) pairs, order ignored,
    and the asset they are attached to (values are per asset, so two assets never share a key even when
    both have no files); ``asset=None`` for a root shared by every asset (the promoted checkpoint).

    The same files give the same key whatever their names.
    """
    files_part = sorted((lang or "", sha) for lang, sha in files)
    canonical = json.dumps({"kind": kind, "asset": asset, "files": files_part})
    return hashlib.sha256(canonical.encode()).hexdigest()
