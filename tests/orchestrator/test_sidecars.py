from pathlib import Path

import pytest

from mediamesh.features import InputFileError, TitleMetadata
from mediamesh.orchestrator.execution.sidecars import (
    is_sidecar,
    parse_title_sidecar,
    sidecar_stems,
    subtitle_language,
    subtitle_sidecars,
    title_sidecar,
)


def test_sidecars_share_the_stem_and_may_carry_a_language(tmp_path: Path) -> None:
    video = tmp_path / "movie.mp4"
    video.write_bytes(b"")
    for name in (
        "movie.srt",
        "movie.en.srt",
        "movie.pt-BR.vtt",
        "movie.eng.VTT",
        "movie.txt",
        "other.srt",
        "movie.director.cut.srt",
        "movies.srt",
    ):
        (tmp_path / name).write_text("x")
    siblings = [str(p) for p in tmp_path.iterdir()]
    found = [(Path(p).name, lang) for p, lang in subtitle_sidecars(str(video), siblings)]
    assert found == [
        ("movie.en.srt", "en"),
        ("movie.eng.VTT", "eng"),
        ("movie.pt-BR.vtt", "pt-BR"),
        ("movie.srt", None),
    ]


@pytest.mark.parametrize(
    ("name", "language"),
    [("film.en.srt", "en"), ("film.pt_BR.vtt", "pt-BR"), ("film.srt", None), ("my.film.srt", None), ("en.srt", None)],
)
def test_language_from_a_subtitle_file_name(name: str, language: str | None) -> None:
    assert subtitle_language(Path(name)) == language


def test_sidecars_match_by_name_in_a_bucket_as_in_a_folder() -> None:
    siblings = [
        "s3://landing/in/film.mp4",
        "s3://landing/in/film.en.srt",
        "s3://landing/in/film.json",
        "s3://landing/x/film.srt",
    ]
    assert subtitle_sidecars("s3://landing/in/film.mp4", siblings) == [("s3://landing/in/film.en.srt", "en")]
    assert title_sidecar("s3://landing/in/film.mp4", siblings) == "s3://landing/in/film.json"
    assert title_sidecar("s3://landing/x/film.mp4", siblings) is None
    assert sidecar_stems("s3://landing/in/film.en.srt") == ["film.en", "film"]
    assert sidecar_stems("film.json") == ["film"]
    assert [is_sidecar(n) for n in ("a.SRT", "a.vtt", "a.json", "a.mp4")] == [True, True, True, False]


def test_title_sidecar_is_read_and_checked(tmp_path: Path) -> None:
    video = tmp_path / "film.mp4"
    sidecar = tmp_path / "film.json"

    def read_title_sidecar(_: Path) -> TitleMetadata:
        return parse_title_sidecar(sidecar, sidecar.name)

    sidecar.write_text('{"title": "Big Buck Bunny", "synopsis": "A rabbit gets even.", "tags": ["comedy", "animal"]}')
    meta = read_title_sidecar(video)
    assert meta == TitleMetadata("Big Buck Bunny", "A rabbit gets even.", ("comedy", "animal"))
    assert meta is not None
    assert meta.text() == "Big Buck Bunny. A rabbit gets even.. Tags: comedy, animal"
    sidecar.write_text('{"title": "x", "director": "y"}')
    with pytest.raises(InputFileError, match=r"'film.json' has unknown keys \['director'\]"):
        read_title_sidecar(video)
    sidecar.write_text("{not json")
    with pytest.raises(InputFileError, match=r"cannot read title metadata 'film.json'"):
        read_title_sidecar(video)
    sidecar.write_text('["a list"]')
    with pytest.raises(InputFileError, match="must be a JSON object"):
        read_title_sidecar(video)
    sidecar.write_text('{"tags": [1, 2]}')
    with pytest.raises(InputFileError, match="tags must be a list of strings"):
        read_title_sidecar(video)
