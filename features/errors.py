"""The mediamesh exception hierarchy: five families under one base.

    MediameshError                  every error mediamesh raises; ``retryable`` says whether trying again can help
    ├── DefinitionError             what was declared, configured or asked for is wrong; fix it, retrying cannot help
    │   ├── UnknownInputError       a parameter names no feature
    │   ├── DuplicateFeatureError   two features share a name
    │   ├── CycleError              features depend on each other in a loop
    │   ├── InputTypeError          an input's annotation does not match the producing feature's output type
    │   └── UnknownFeatureError     a name matches no feature (also a NotFoundError)
    ├── ExecutionError              computing a value failed; names ``feature@version`` and the asset
    │   ├── MediaError              the input media cannot be decoded or is malformed (not retryable)
    │   ├── InputFileError          the input file is missing, empty or unreadable (not retryable)
    │   └── TransientError          a resource a feature uses was briefly unavailable (retryable)
    ├── NotFoundError               a name or id matches nothing: an asset, a value, a feature, a blob
    │   └── AmbiguousError          a short id or name matches more than one thing
    ├── UnavailableError            a service cannot be reached now: the database, the object store, Prefect (retryable)
    │   └── BackendUnavailableError the database or the object store; says which and what to do
    └── CorruptError                stored bytes are not what was written; retrying cannot help

Other modules subclass these (``SubtitleError`` a MediaError, ``CorruptValueError`` a CorruptError, ...);
nothing subclasses ``MediameshError`` directly. The HTTP API maps each family to one status, and the
retry policy reads ``retryable``, never message strings.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AmbiguousError",
    "BackendUnavailableError",
    "CorruptError",
    "CycleError",
    "DefinitionError",
    "DuplicateFeatureError",
    "ExecutionError",
    "InputFileError",
    "InputTypeError",
    "MediaError",
    "MediameshError",
    "NotFoundError",
    "TransientError",
    "UnavailableError",
    "UnknownFeatureError",
    "UnknownInputError",
    "did_you_mean",
]


class MediameshError(Exception):
    """Base of every error mediamesh raises."""

    retryable: bool = False


class DefinitionError(MediameshError):
    """What was declared, configured or asked for is wrong (a feature, the registry, a setting, a request)."""


class UnknownInputError(DefinitionError):
    pass


class DuplicateFeatureError(DefinitionError):
    pass


class CycleError(DefinitionError):
    pass


class InputTypeError(DefinitionError):
    pass


class ExecutionError(MediameshError):
    """Computing a value failed. ``feature`` is ``name@version``; ``asset`` the asset id, when known."""

    def __init__(self, message: str, *, feature: str | None = None, asset: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.feature = feature
        self.asset = asset

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.feature, self.asset and f"asset {self.asset[:12]}") if part)
        return f"{self.message} [{where}]" if where else self.message


class MediaError(ExecutionError):
    """The media cannot be decoded or is malformed; the same bytes will fail again."""


class InputFileError(ExecutionError):
    """The input file is missing, empty or unreadable."""


class TransientError(ExecutionError):
    """A resource a feature uses was briefly unavailable; trying again can help."""

    retryable = True


class NotFoundError(MediameshError):
    """A name or id matches nothing."""


class AmbiguousError(NotFoundError):
    """A short id or name matches more than one thing; a longer one picks it."""


class UnknownFeatureError(NotFoundError, DefinitionError):
    """A feature name matches no feature; the message suggests the near miss."""


class UnavailableError(MediameshError):
    """A service cannot be reached now (the database, the object store, Prefect); trying again can help."""

    retryable = True


class CorruptError(MediameshError):
    """Stored bytes are not what was written; they stay so, retrying cannot help."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix naming the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


class BackendUnavailableError(UnavailableError):
    """The database or the object store cannot be reached. ``backend`` names which; the message says what to do."""

    def __init__(self, backend: str, where: str, reason: str, hint: str) -> None:
        super().__init__(f"the {backend} ({where}) is unreachable: {reason}; {hint}")
        self.backend = backend
        self.where = where
        self.reason = reason
        self.hint = hint

    def __reduce__(self) -> tuple[type[BackendUnavailableError], tuple[str, str, str, str]]:
        # Errors cross process and thread boundaries pickled (task runners); rebuild from the arguments.
        return type(self), (self.backend, self.where, self.reason, self.hint)
