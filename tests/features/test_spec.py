import importlib.util
import sys
import textwrap
import types
from pathlib import Path

import pytest

from mediamesh.features import (
    DefinitionError,
    EncodedMedia,
    FeatureSpec,
    JsonValue,
    ShotTable,
    SourceMedia,
    default_registry,
    feature,
    spec_of,
)
from mediamesh.features.identity import value_key


def test_decorator_attaches_frozen_spec_and_keeps_function_callable() -> None:
    @feature(version="3", resources="gpu")
    def thumbs(source: SourceMedia, *, count: int = 4, mode: str = "uniform") -> int:
        """How many thumbnails."""
        return count

    spec = spec_of(thumbs)
    assert isinstance(spec, FeatureSpec)
    assert (spec.name, spec.version, spec.resources, spec.ref) == ("thumbs", "3", "gpu", "thumbs@3")
    assert spec.input_names == ("source",)
    assert spec.inputs[0].annotation is SourceMedia
    assert dict(spec.params) == {"count": 4, "mode": "uniform"}
    assert spec.output is int
    assert spec.doc == "How many thumbnails."
    assert thumbs(SourceMedia("a", Path("x")), count=7) == 7
    with pytest.raises(AttributeError):
        spec.version = "4"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.params["count"] = 5  # type: ignore[index]


def test_replace_makes_variants_without_touching_the_original() -> None:
    @feature(version="1")
    def scaled(source: SourceMedia, *, height: int = 360) -> int:
        return height

    spec = spec_of(scaled)
    assert spec is not None
    bumped = spec.replace(version="2", params={"height": 720})
    assert (bumped.version, bumped.params["height"]) == ("2", 720)
    assert (spec.version, spec.params["height"]) == ("1", 360)
    with pytest.raises(DefinitionError, match=r"feature 'scaled' has no param\(s\) \['width'\]"):
        spec.replace(params={"width": 1})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(source: SourceMedia) -> int: ...\nf = feature(version='')(f)", "version must be a non-empty string"),
        ("def f(source: SourceMedia) -> int: ...\nf = feature(version='1', resources='tpu')(f)", "resources must be"),
        ("def f(source) -> int: ...\nf = feature(version='1')(f)", "input 'source' needs a type annotation"),
        ("def f(source: SourceMedia): ...\nf = feature(version='1')(f)", "declare the return type"),
        ("def f(*args: int) -> int: ...\nf = feature(version='1')(f)", r"\*args and \*\*kwargs are not allowed"),
        ("def f(source: SourceMedia, *, k: int) -> int: ...\nf = feature(version='1')(f)", "param 'k' needs a default"),
        ("def f(source: SourceMedia, k: int = 1) -> int: ...\nf = feature(version='1')(f)", "make it keyword-only"),
        (
            "def f(source: SourceMedia, *, k: object = object()) -> int: ...\nf = feature(version='1')(f)",
            "is not JSON-serialisable",
        ),
    ],
)
def test_bad_declarations_are_definition_errors_naming_the_feature(source: str, message: str) -> None:
    namespace = {"feature": feature, "SourceMedia": SourceMedia}
    with pytest.raises(DefinitionError, match=message) as info:
        exec(source, namespace)
    assert "'f'" in str(info.value)


def _load(tmp_path: Path, name: str, code: str) -> types.ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(code))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


BASE = """
from mediamesh.features import SourceMedia, feature

def helper(n: int) -> int:
    return n + 1

@feature(version="1")
def counted(source: SourceMedia) -> int:
    '''A count.'''
    total = helper(1)  # a comment
    return total
"""


@pytest.mark.parametrize(
    ("variant", "same"),
    [
        (BASE.replace("# a comment", "# another comment entirely"), True),
        (BASE.replace("'''A count.'''", "'''A different docstring.'''"), True),
        (BASE.replace("    total = helper(1)", "\n\n    total = helper( 1 )"), True),
        (BASE.replace('version="1"', 'version="1", resources="cpu"'), True),
        (BASE.replace("helper(1)", "helper(2)"), False),
        (BASE.replace("return n + 1", "return n + 2"), False),
        (BASE.replace("total", "result"), False),
    ],
)
def test_code_fingerprint_ignores_comments_docstrings_and_layout_but_not_code(
    tmp_path: Path, variant: str, same: bool
) -> None:
    base = spec_of(_load(tmp_path, "fp_base", BASE).counted)
    other = spec_of(_load(tmp_path, "fp_variant", variant).counted)
    assert base is not None and other is not None
    assert (base.fingerprint == other.fingerprint) is same


def test_value_key_depends_on_every_part_of_identity_and_nothing_else() -> None:
    base = value_key("shots", "1", {"threshold": 27.0}, None, ["enc"])
    assert base == value_key("shots", "1", {"threshold": 27.0}, None, ["enc"])
    variants = [
        value_key("shots2", "1", {"threshold": 27.0}, None, ["enc"]),
        value_key("shots", "2", {"threshold": 27.0}, None, ["enc"]),
        value_key("shots", "1", {"threshold": 30.0}, None, ["enc"]),
        value_key("shots", "1", {"threshold": 27.0}, "model-a", ["enc"]),
        value_key("shots", "1", {"threshold": 27.0}, None, ["enc2"]),
        value_key("shots", "1", {"threshold": 27.0}, None, ["enc", "x"]),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert value_key("f", "1", {"a": 1, "b": 2}, None, []) == value_key("f", "1", {"b": 2, "a": 1}, None, [])


def test_builtin_types_are_what_the_builtin_features_declare() -> None:
    registry = default_registry()
    assert registry["encode"].output is EncodedMedia
    assert registry["shots"].output is ShotTable
    # Cuts are found on the original's frames and placed on the encode's.
    assert registry["shots"].input_names == ("source", "encode")


def test_resources_can_follow_the_params() -> None:
    @feature(version="1", resources=lambda params: "gpu" if params["model"] == "neural" else "cpu")
    def cuts(source: SourceMedia, *, model: str = "histogram") -> JsonValue:
        """Where the shots change."""
        raise NotImplementedError

    spec = spec_of(cuts)
    assert spec is not None and spec.resources == "cpu"
    assert spec.replace(params={"model": "neural"}).resources == "gpu"
    assert spec.replace(params={"model": "neural"}).replace(params={"model": "edges"}).resources == "cpu"
    shots = default_registry()["shots"]
    assert (shots.resources, shots.replace(params={"detector": "content+transnetv2"}).resources) == ("cpu", "gpu")

    with pytest.raises(DefinitionError, match="resources must be 'cpu' or 'gpu', got 'tpu'"):

        @feature(version="1", resources=lambda params: "tpu")  # type: ignore[arg-type,return-value]
        def elsewhere(source: SourceMedia) -> JsonValue:
            """Nowhere."""
            raise NotImplementedError
