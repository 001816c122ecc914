"""Features that depend on each other in a loop."""

from mediamesh.features import SourceMedia, feature


@feature(version="1")
def alpha(source: SourceMedia, gamma: int) -> int:
    return gamma


@feature(version="1")
def beta(alpha: int) -> int:
    return alpha


@feature(version="1")
def gamma(beta: int) -> int:
    return beta
