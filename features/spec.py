"""``@feature`` and the frozen :class:`FeatureSpec` it attaches to a plain function."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import textwrap
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from mediamesh.features.errors import DefinitionError
from mediamesh.features.identity import MEDIAFM, SOURCE, SUBTITLES, TITLE
from mediamesh.features.values import MediaFMCheckpoint, SourceMedia, Subtitles, TitleMetadata

__all__ = [
    "MEDIAFM",
    "ROOT_INPUTS",
    "SOURCE",
    "SUBTITLES",
    "TITLE",
    "FeatureSpec",
    "Input",
    "Resources",
    "code_fingerprint",
    "feature",
    "spec_of",
]

F = TypeVar("F", bound=Callable[..., Any])
Resources = Literal["cpu", "gpu"]

#: Inputs that no feature produces: they come with the asset at ingest. Name -> type.
ROOT_INPUTS: Mapping[str, type] = types.MappingProxyType(
    {SOURCE: SourceMedia, SUBTITLES: Subtitles, TITLE: TitleMetadata, MEDIAFM: MediaFMCheckpoint}
)

_SPEC_ATTR = "__mediamesh_feature__"


@dataclass(frozen=True)
class Input:
    """One input of a feature: the parameter ``name`` (a feature name) and its annotated type."""

    name: str
    annotation: Any


@dataclass(frozen=True)
class FeatureSpec:
    """Everything mediamesh knows about a feature, read once from its function and decorator."""

    name: str
    version: str
    fn: Callable[..., Any] = field(repr=False, compare=False)
    inputs: tuple[Input, ...]
    params: Mapping[str, Any]
    output: Any
    resources: Resources = "cpu"
    fingerprint: str = ""
    #: Returns the fingerprint of the model the feature loads (weights hash or pinned revision), or None.
    model: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)
    doc: str = ""
    #: Whether this feature may take the place of a same-named one from an earlier source (a built-in, say).
    replaces: bool = False
    #: Computed when asked for (a query, ``--targets``), not by every ingest: match cutting's representations.
    on_demand: bool = False
    #: Chooses ``resources`` from the params, where the pool depends on them (the shot detector, say).
    resources_of: Callable[[Mapping[str, Any]], Resources] | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    def replace(self, **changes: Any) -> FeatureSpec:
        """A variant of this spec, e.g. ``spec.replace(version="2")`` or ``spec.replace(params={...})``."""
        if "params" in changes:
            unknown = set(changes["params"]) - set(self.params)
            if unknown:
                raise DefinitionError(
                    f"feature {self.name!r} has no param(s) {sorted(unknown)}; its params are {sorted(self.params)}"
                )
            changes["params"] = types.MappingProxyType({**self.params, **changes["params"]})
            if self.resources_of is not None and "resources" not in changes:
                changes["resources"] = _checked_resources(
                    f"feature {self.name!r}", self.resources_of(changes["params"])
                )
        return dataclasses.replace(self, **changes)

    def model_fingerprint(self) -> str | None:
        return self.model() if self.model else None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def feature(
    *,
    version: str,
    resources: Resources | Callable[[Mapping[str, Any]], Resources] = "cpu",
    name: str | None = None,
    model: Callable[[], str | None] | None = None,
    replaces: bool = False,
    on_demand: bool = False,
) -> Callable[[F], F]:
    """Declare a feature. Positional parameters are inputs, named after the features they consume;
    keyword-only parameters (with defaults) are the feature's params. Returns the function unchanged
    but for a frozen spec attached to it, so it stays directly callable.

    ``resources`` is ``"cpu"`` or ``"gpu"`` (the work pool), or a function of the params that says which.
    ``replaces=True`` lets a plugin's feature take the place of a built-in (or an earlier plugin's) feature
    of the same name; without it, two sources defining one name is a :class:`DuplicateFeatureError`.
    ``on_demand=True`` leaves the feature out of what an ingest computes by default; a query that needs it
    (or ``--targets``) has it computed.
    """

    def decorate(fn: F) -> F:
        spec = _build_spec(fn, version=version, resources=resources, name=name, model=model)
        setattr(fn, _SPEC_ATTR, dataclasses.replace(spec, replaces=replaces, on_demand=on_demand))
        return fn

    return decorate


def spec_of(obj: Any) -> FeatureSpec | None:
    """The spec ``@feature`` attached to ``obj``, or None."""
    spec = getattr(obj, _SPEC_ATTR, None)
    return spec if isinstance(spec, FeatureSpec) else None


def _build_spec(
    fn: Callable[..., Any],
    *,
    version: str,
    resources: str | Callable[[Mapping[str, Any]], Resources],
    name: str | None,
    model: Callable[[], str | None] | None,
) -> FeatureSpec:
    fname = name or fn.__name__
    where = f"feature {fname!r} ({fn.__module__}.{fn.__qualname__})"
    if not isinstance(version, str) or not version.strip():
        raise DefinitionError(f"{where}: version must be a non-empty string, got {version!r}")
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError) as exc:
        raise DefinitionError(f"{where}: cannot resolve type annotations: {exc}") from exc

    inputs: list[Input] = []
    params: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise DefinitionError(f"{where}: *args and **kwargs are not allowed; name each input and param")
        if p.kind == p.KEYWORD_ONLY:
            if p.default is p.empty:
                raise DefinitionError(f"{where}: param {p.name!r} needs a default value")
            _check_json(where, p.name, p.default)
            params[p.name] = p.default
            continue
        if p.default is not p.empty:
            raise DefinitionError(
                f"{where}: input {p.name!r} has a default; make it keyword-only (after `*`) to declare a param"
            )
        if p.name not in hints:
            raise DefinitionError(f"{where}: input {p.name!r} needs a type annotation")
        inputs.append(Input(p.name, hints[p.name]))
    if "return" not in hints or hints["return"] is type(None):
        raise DefinitionError(f"{where}: declare the return type (the value the feature produces)")
    resources_of = resources if callable(resources) else None
    chosen = _checked_resources(where, resources_of(params) if resources_of is not None else resources)
    return FeatureSpec(
        name=fname,
        version=version,
        fn=fn,
        inputs=tuple(inputs),
        params=types.MappingProxyType(params),
        output=hints["return"],
        resources=chosen,
        fingerprint=code_fingerprint(fn),
        model=model,
        doc=inspect.getdoc(fn) or "",
        resources_of=resources_of,
    )


def _checked_resources(where: str, resources: object) -> Resources:
    if resources == "cpu" or resources == "gpu":
        return resources
    raise DefinitionError(f"{where}: resources must be 'cpu' or 'gpu', got {resources!r}")


def _check_json(where: str, name: str, value: Any) -> None:
    try:
        json.dumps(value, sort_keys=True)
    except TypeError as exc:
        raise DefinitionError(f"{where}: param {name!r} default {value!r} is not JSON-serialisable") from exc


def code_fingerprint(fn: Callable[..., Any]) -> str:
    """SHA-256 of the function's normalised AST plus that of the same-module helpers it calls.

    Comments, docstrings, decorators and formatting do not change it; renaming a variable or editing a
    helper does.
    """
    seen: set[str] = set()
    parts: list[str] = []
    stack: list[Any] = [fn]
    while stack:
        obj = stack.pop()
        qualname = f"{obj.__module__}.{obj.__qualname__}"
        if qualname in seen:
            continue
        seen.add(qualname)
        tree = _normalised_ast(obj)
        if tree is None:
            continue
        parts.append(f"{obj.__qualname__}:{ast.dump(tree, annotate_fields=True, include_attributes=False)}")
        module_globals = getattr(obj, "__globals__", None) or vars(inspect.getmodule(obj) or types.ModuleType("_"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in module_globals:
                helper = module_globals[node.id]
                if (inspect.isfunction(helper) or inspect.isclass(helper)) and helper.__module__ == fn.__module__:
                    stack.append(helper)
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()


def _normalised_ast(obj: Any) -> ast.AST | None:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = []
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree
