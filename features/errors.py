"""The mediamesh exception hierarchy.

    MediameshError                  every error mediamesh raises; ``retryable`` says whether trying again can help
    ├── DefinitionError             a feature or the registry is declared wrongly (raised when the registry is built)
    │   ├── UnknownInputError       a parameter names no feature
    │   ├── DuplicateFeatureError   two features share a name
    │   ├── CycleError              features depend on each other in a loop
    │   └── InputTypeError          an input's annotation does not match the producing feature's output type
    └── ExecutionError              computing a value failed; names ``feature@version`` and the asset
        ├── MediaError              the input media cannot be decoded or is malformed (not retryable)
        ├── InputFileError          the input file is missing, empty or unreadable (not retryable)
        └── TransientError          a service or resource was briefly unavailable (retryable)
            └── BackendUnavailableError the database or the object store cannot be reached; says which and what to do

The retry policy reads ``retryable``, never message strings.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BackendUnavailableError",
    "CycleError",
    "DefinitionError",
    "DuplicateFeatureError",
    "ExecutionError",
    "InputFileError",
    "InputTypeError",
    "MediaError",
    "MediameshError",
    "TransientError",
    "UnknownInputError",
    "did_you_mean",
]


class MediameshError(Exception):
    """Base of every error mediamesh raises."""

    retryable: bool = False


class DefinitionError(MediameshError):
    """A feature or registry definition is wrong; fix the code, retrying cannot help."""


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
    """A service or resource was briefly unavailable; trying again can help."""

    retryable = True


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix naming the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


class BackendUnavailableError(TransientError):
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
