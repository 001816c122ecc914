"""Value identity: a key that follows from what produced a value, and from nothing else."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["attachment_set_key", "value_key"]


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
    identity = {
        "feature": feature,
        "version": version,
        "params": dict(params),
        "model": model_fingerprint,
        "inputs": list(input_keys),
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def attachment_set_key(kind: str, files: Sequence[tuple[str | None, str]]) -> str:
    """The key of a root input made of attached files: their (language, SHA-256) pairs, order ignored.

    The same files give the same key whatever their names; no files is a key of its own.
    """
    canonical = json.dumps({"kind": kind, "files": sorted((lang or "", sha) for lang, sha in files)})
    return hashlib.sha256(canonical.encode()).hexdigest()
