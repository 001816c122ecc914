import pytest

from mediamesh.features import (
    CycleError,
    DefinitionError,
    DuplicateFeatureError,
    InputTypeError,
    Registry,
    SourceMedia,
    UnknownInputError,
    feature,
    spec_of,
)
from tests.features.resources import chain_features, cyclic_features


def test_registry_from_module_takes_only_features_defined_there_in_dependency_order() -> None:
    registry = Registry.from_modules(chain_features)
    assert set(registry) == {"size", "doubled", "label"}
    order = list(registry)
    assert order.index("size") < order.index("doubled")
    assert registry.closure(["doubled"]) == ("size", "doubled")
    assert registry.dependents("size") == ("doubled",)
    assert registry["label"].resources == "gpu"


def test_cycle_is_reported_with_its_path() -> None:
    with pytest.raises(CycleError, match=r"cycle: (alpha -> gamma -> beta -> alpha|beta -> alpha -> gamma -> beta)"):
        Registry.from_modules(cyclic_features)


def test_unknown_input_names_the_feature_and_suggests_the_nearest_name() -> None:
    @feature(version="1")
    def sizes(source: SourceMedia) -> int:
        return 1

    @feature(version="1")
    def total(size: int) -> int:
        return size

    with pytest.raises(UnknownInputError, match=r"feature total@1 .* reads input 'size'.* Did you mean 'sizes'\?"):
        Registry([sizes, total])


def test_misspelt_source_gets_a_suggestion() -> None:
    @feature(version="1")
    def probe(sourc: SourceMedia) -> int:
        return 1

    with pytest.raises(UnknownInputError, match=r"Did you mean 'source'\?"):
        Registry([probe])


def test_duplicate_name_names_both_definitions() -> None:
    @feature(version="1")
    def size(source: SourceMedia) -> int:
        return 1

    with pytest.raises(DuplicateFeatureError, match=r"'size' is defined twice: in .*chain_features.size and in .*"):
        Registry([*Registry.from_modules(chain_features).values(), size])


def test_type_mismatch_between_producer_and_consumer() -> None:
    @feature(version="1")
    def headline(source: SourceMedia) -> str:
        return "x"

    @feature(version="1")
    def shout(headline: int) -> str:
        return "X"

    with pytest.raises(InputTypeError, match=r"shout@1 annotates input 'headline' as int, but 'headline' produces str"):
        Registry([headline, shout])


def test_source_must_be_annotated_as_source_media() -> None:
    @feature(version="1")
    def wrong(source: str) -> int:
        return 1

    with pytest.raises(InputTypeError, match=r"'source' produces SourceMedia"):
        Registry([wrong])


def test_reserved_name_and_non_features_are_rejected() -> None:
    @feature(version="1", name="source")
    def sneaky(source: SourceMedia) -> int:
        return 1

    with pytest.raises(DefinitionError, match="reserved for an input that comes with the asset"):
        Registry([sneaky])
    with pytest.raises(DefinitionError, match="is not a feature"):
        Registry([chain_features.not_a_feature])


def test_lookup_and_replace_suggest_near_misses() -> None:
    registry = Registry.from_modules(chain_features)
    with pytest.raises(KeyError, match=r"no feature named 'sise'.*Did you mean 'size'\?"):
        registry["sise"]
    with pytest.raises(DefinitionError, match=r"Did you mean 'doubled'\?"):
        registry.closure(["doubld"])
    spec = spec_of(chain_features.doubled)
    assert spec is not None
    bumped = registry.replace(spec.replace(version="3"))
    assert bumped["doubled"].version == "3"
    assert registry["doubled"].version == "2"
    with pytest.raises(DefinitionError, match="cannot replace unknown feature"):
        registry.replace(spec.replace(name="nope"))
