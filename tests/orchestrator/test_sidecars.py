from pathlib import Path

import pytest

from orchestrator.sidecars import find_subtitle_sidecars, subtitle_language


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
    (tmp_path / "movie.fr.srt").mkdir()
    found = [(p.name, lang) for p, lang in find_subtitle_sidecars(video)]
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
