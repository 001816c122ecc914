"""Reading subtitle files and text subtitle streams, on files written here and clips muxed with real ffmpeg."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest

from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.media import ffmpeg_exe
from mediamesh.features.subtitles import (
    SubtitleError,
    clean_text,
    embedded_text_streams,
    parse_subtitles,
    read_embedded_stream,
    read_subtitle_text,
)
from mediamesh.features.values import Cue

DATA = Path(__file__).resolve().parents[1] / "data"

SRT = """1
00:00:00,500 --> 00:00:01,200
<i>Hello</i>  there,
<font color="#ffffff">General</font>.

2
00:00:01,500 --> 00:00:02,750
{\\an8}Second cue

3
00:00:02,800 --> 00:00:02,900

"""

ASS = """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:02.00,0:00:03.00,Default,,0,0,0,,{\\i1}Later{\\i0}\\Nline
Dialogue: 0,0:00:00.50,0:00:01.25,Default,,0,0,0,,First\\hcue
Comment: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,a translator's note
Dialogue: 0,0:00:01.50,0:00:01.75,Default,,0,0,0,,{\\p1}m 0 0 l 100 0 100 100{\\p0}Sign
"""


def write(directory: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = directory / name
    path.write_text(text, encoding=encoding, newline="")
    return path


def one_cue(text: str, timing: str = "00:00:01,000 --> 00:00:02,000") -> str:
    return f"1\n{timing}\n{text}\n"


def test_srt_cues_are_plain_text_in_seconds(tmp_path: Path) -> None:
    assert parse_subtitles(write(tmp_path, "movie.en.srt", SRT), "movie.en.srt") == [
        Cue(0.5, 1.2, "Hello there, General."),
        Cue(1.5, 2.75, "Second cue"),
    ]


def test_windows_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "crlf.srt", SRT.replace("\n", "\r\n"))
    assert [cue.text for cue in parse_subtitles(path, "crlf.srt")] == ["Hello there, General.", "Second cue"]


def test_cues_are_sorted_by_start(tmp_path: Path) -> None:
    text = "2\n00:00:05,000 --> 00:00:06,000\nlate\n\n1\n00:00:01,000 --> 00:00:02,000\nearly\n"
    assert [cue.text for cue in parse_subtitles(write(tmp_path, "x.srt", text), "x.srt")] == ["early", "late"]


def test_webvtt_without_header_blocks_cue_ids_or_markup(tmp_path: Path) -> None:
    text = (
        "WEBVTT - Example\nKind: captions\nLanguage: en\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "NOTE written by hand,\nover two lines\n\n"
        "intro\n00:01.000 --> 00:02.500 align:start position:10%\n"
        "<v Bob>Hello</v> <c.loud>there</c> &amp; <00:00:02.000>bye\n\n"
        "00:00:03.000 --> 00:00:04.000\nTwo\nlines\n\n"
        "NOTE at the end\n"
    )
    assert parse_subtitles(write(tmp_path, "captions.vtt", text), "captions.vtt") == [
        Cue(1.0, 2.5, "Hello there & bye"),
        Cue(3.0, 4.0, "Two lines"),
    ]


def test_ass_dialogue_without_comments_drawings_or_override_tags(tmp_path: Path) -> None:
    assert parse_subtitles(write(tmp_path, "anime.ass", ASS), "anime.ass") == [
        Cue(0.5, 1.25, "First cue"),
        Cue(1.5, 1.75, "Sign"),
        Cue(2.0, 3.0, "Later line"),
    ]


def test_ssa_v4(tmp_path: Path) -> None:
    text = (
        "[Script Info]\nScriptType: v4.00\n\n[V4 Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, TertiaryColour, BackColour, Bold, Italic, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, AlphaLevel, Encoding\n"
        "Style: Default,Arial,20,16777215,255,0,0,0,0,1,2,2,2,10,10,10,0,1\n\n[Events]\n"
        "Format: Marked, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Dialogue: Marked=0,0:00:01.00,0:00:02.00,Default,,0000,0000,0000,,Old {\\i1}style{\\i0}\n"
    )
    assert parse_subtitles(write(tmp_path, "old.ssa", text), "old.ssa") == [Cue(1.0, 2.0, "Old style")]


@pytest.mark.parametrize(
    ("name", "text"),
    [("really-srt.vtt", SRT), ("really-srt.txt", SRT), ("really-ass.srt", ASS)],
)
def test_format_is_read_from_the_content_not_the_extension(tmp_path: Path, name: str, text: str) -> None:
    assert len(parse_subtitles(write(tmp_path, name, text), name)) in (2, 3)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_latin1_and_cp1252_files(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "fr.srt", one_cue("Un café, Über alles, el niño."), encoding)
    assert path.read_bytes().count(b"\xe9") == 1  # a single byte, not UTF-8
    assert parse_subtitles(path, "fr.srt") == [Cue(1.0, 2.0, "Un café, Über alles, el niño.")]


def test_cp1252_punctuation(tmp_path: Path) -> None:
    path = write(tmp_path, "quotes.srt", one_cue("“Quoted” – 5 € naïve"), "cp1252")
    assert parse_subtitles(path, "quotes.srt")[0].text == "“Quoted” – 5 € naïve"


def test_cyrillic_code_page_is_guessed(tmp_path: Path) -> None:
    text = one_cue("Привет, как дела? Это тест субтитров.")
    assert read_subtitle_text(write(tmp_path, "ru.srt", text, "cp1251"), "ru.srt") == text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_unicode_files_with_and_without_bom(tmp_path: Path, encoding: str) -> None:
    text = one_cue("Καλημέρα, café, 字幕")
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # these codecs write no BOM; give them one
        data = "\ufeff".encode(encoding) + data
    path = tmp_path / f"{encoding}.srt"
    path.write_bytes(data)
    assert read_subtitle_text(path, path.name).lstrip("\ufeff") == text
    assert parse_subtitles(path, path.name) == [Cue(1.0, 2.0, "Καλημέρα, café, 字幕")]


@pytest.mark.parametrize("content", [b"", b"  \n\r\n\t \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_or_blank_file_has_no_cues(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "blank.srt"
    path.write_bytes(content)
    assert parse_subtitles(path, "blank.srt") == []


def test_cues_without_text_are_dropped(tmp_path: Path) -> None:
    text = "1\n00:00:01,000 --> 00:00:02,000\n<i> </i>\n\n2\n00:00:03,000 --> 00:00:04,000\n{\\an8}\n"
    assert parse_subtitles(write(tmp_path, "silent.srt", text), "silent.srt") == []


@pytest.mark.parametrize("nul", [True, False])
def test_binary_garbage(tmp_path: Path, nul: bool) -> None:
    data = random.Random(0).randbytes(4096)
    path = tmp_path / "movie.en.srt"
    path.write_bytes(data if nul else data.replace(b"\x00", b""))
    with pytest.raises(SubtitleError, match=r"^cannot parse subtitles 'movie\.en\.srt': not a text file$"):
        parse_subtitles(path, "movie.en.srt")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("movie.en.srt", "Just some words,\nno timing at all.\n"),
        ("movie.en.srt", "1\n2\n3\n"),
        ("notes.txt", "Just some words.\n"),
    ],
)
def test_text_without_any_cue(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(SubtitleError, match=rf"^cannot parse subtitles '{name}': no cue found"):
        parse_subtitles(write(tmp_path, name, text), name)


EMPTY_ASS = ASS.split("Dialogue:")[0]  # the script header and the [Events] Format line, no event


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.vtt", "WEBVTT\n\nNOTE nothing here yet\n"),
        ("empty.ass", "[Script Info]\nTitle: x\n\n[V4+ Styles]\n\n[Events]\n"),
        ("empty.ass", EMPTY_ASS),
        ("notes.ass", ASS.replace("Dialogue:", "Comment:")),
    ],
)
def test_a_track_without_events_is_valid_and_empty(tmp_path: Path, name: str, text: str) -> None:
    assert parse_subtitles(write(tmp_path, name, text), name) == []


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (one_cue("Hello", "00:00:0x,000 --> 00:00:02,500"), 2),
        (SRT + "\n4\n00:00:05,000 --> 00:00:0?,000\nbroken\n\n5\n00:00:07,000 --> 00:00:08,000\nfine\n", 15),
        (one_cue("No milliseconds", "00:00:01 --> 00:00:02"), 2),
    ],
)
def test_broken_srt_timing(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, "movie.en.srt", text)
    with pytest.raises(
        SubtitleError, match=rf"^cannot parse subtitles 'movie\.en\.srt': malformed timing on line {line}:"
    ):
        parse_subtitles(path, "movie.en.srt")


def test_broken_webvtt_timing(tmp_path: Path) -> None:
    path = write(tmp_path, "c.vtt", "WEBVTT\n\n00:01.000 --> 00:02.500\nok\n\n00:03,000 --> 00:04.000\nbad\n")
    with pytest.raises(SubtitleError, match=r"malformed timing on line 6: '00:03,000 --> 00:04\.000'"):
        parse_subtitles(path, "c.vtt")


def test_broken_ass_timing(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.ass", ASS.replace("0:00:02.00,0:00:03.00", "0:00:0x.00,0:00:03.00"))
    with pytest.raises(
        SubtitleError, match=r"^cannot parse subtitles 'bad\.ass': failed to parse timestamp: '0:00:0x\.00'"
    ):
        parse_subtitles(path, "bad.ass")


def test_cue_ending_before_it_starts(tmp_path: Path) -> None:
    path = write(tmp_path, "x.srt", SRT + "\n4\n00:00:09,000 --> 00:00:08,000\nbackwards\n")
    with pytest.raises(SubtitleError, match=r"cue 4 ends \(8\.000 s\) before it starts \(9\.000 s\)"):
        parse_subtitles(path, "x.srt")


@pytest.mark.parametrize(
    ("name", "timing", "message"),
    [
        # pysubs2 drops the minus sign: these read as 1 s -> 2 s, 1 s -> 2 s and 2 s -> 1 s.
        ("x.srt", "-00:00:01,000 --> 00:00:02,000", r"cue 4 starts before 0 \(-1\.000 s, ending at 2\.000 s\)$"),
        ("x.srt", "-00:00:01,000 --> -00:00:02,000", r"cue 4 ends \(-2\.000 s\) before it starts \(-1\.000 s\)$"),
        ("x.srt", "-00:00:02,000 --> 00:00:01,000", r"cue 4 starts before 0 \(-2\.000 s, ending at 1\.000 s\)$"),
        ("x.vtt", "-00:01.000 --> 00:02.000", r"cue 4 starts before 0 \(-1\.000 s, ending at 2\.000 s\)$"),
        (
            "x.vtt",
            "-01:00:02.500 --> 01:00:03.000",
            r"cue 4 starts before 0 \(-3602\.500 s, ending at 3603\.000 s\)$",
        ),
        ("x.srt", "00:00:09,000 --> 00:00:09,000", r"cue 4 ends when it starts \(9\.000 s\)$"),
    ],
)
def test_cue_times_must_be_from_0_with_the_end_after_the_start(
    tmp_path: Path, name: str, timing: str, message: str
) -> None:
    header, comma = ("WEBVTT\n\n", ".") if name.endswith(".vtt") else ("", ",")
    text = header + SRT.replace(",", comma) + f"\n4\n{timing}\nbad\n"
    with pytest.raises(SubtitleError, match=rf"^cannot parse subtitles '{re.escape(name)}': {message}"):
        parse_subtitles(write(tmp_path, name, text), name)


def test_negative_ass_times_are_refused(tmp_path: Path) -> None:
    text = ASS.replace("0:00:00.50,0:00:01.25", "-0:00:01.00,0:00:01.25")
    with pytest.raises(SubtitleError, match=r"^cannot parse subtitles 'x\.ass': cue 2 starts before 0 \(-1\.000 s"):
        parse_subtitles(write(tmp_path, "x.ass", text), "x.ass")


def test_errors_are_one_line_media_errors_that_retrying_cannot_fix(tmp_path: Path) -> None:
    with pytest.raises(SubtitleError) as caught:
        parse_subtitles(write(tmp_path, "x.srt", one_cue("x", "00:00:0x,000 --> 00:00:02,000")), "x.srt")
    assert isinstance(caught.value, MediaError)
    assert not caught.value.retryable
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"subtitle file 'gone\.srt' does not exist"):
        parse_subtitles(tmp_path / "gone.srt", "gone.srt")


def test_clean_text() -> None:
    assert clean_text("{\\an8}<b>Bold</b>\\Nand {\\i1}italic{\\i0}\\h \n  spaced") == "Bold and italic spaced"
    assert clean_text("a &lt;tag&gt; stays text, 3 < 4") == "a <tag> stays text, 3 < 4"
    assert clean_text("{\\p2}m 0 0 l 1 1{\\p0}after") == "after"


def mux(out: Path, subtitles: list[tuple[Path, str, str]]) -> Path:
    """``counter.mp4``'s video with each ``(subtitle file, codec, language)`` as a stream after it."""
    args = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(DATA / "counter.mp4")]
    for path, _, _ in subtitles:
        args += ["-i", str(path)]
    args += ["-map", "0:v"]
    for i in range(len(subtitles)):
        args += ["-map", str(i + 1)]
    args += ["-c:v", "copy"]
    for i, (_, codec, language) in enumerate(subtitles):
        args += [f"-c:s:{i}", codec, f"-metadata:s:s:{i}", f"language={language}"]
    subprocess.run([*args, str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Containers holding text subtitle streams: mov_text in .mp4, subrip and ass in .mkv."""
    directory = tmp_path_factory.mktemp("embedded")
    srt = write(directory, "en.srt", SRT)
    ass = write(directory, "fr.ass", ASS)
    return {
        "mp4": mux(directory / "movtext.mp4", [(srt, "mov_text", "eng")]),
        "mkv": mux(directory / "two.mkv", [(ass, "ass", "fre"), (srt, "subrip", "eng")]),
    }


def test_text_streams_of_containers(clips: dict[str, Path]) -> None:
    assert embedded_text_streams(clips["mp4"]) == [(1, "eng", "mov_text")]
    assert embedded_text_streams(clips["mkv"]) == [(1, "fre", "ass"), (2, "eng", "subrip")]
    assert embedded_text_streams(DATA / "counter.mp4") == []


@pytest.mark.parametrize(("clip", "index"), [("mp4", 1), ("mkv", 2)])
def test_embedded_srt_reads_as_the_sidecar(clips: dict[str, Path], tmp_path: Path, clip: str, index: int) -> None:
    sidecar = parse_subtitles(write(tmp_path, "en.srt", SRT), "en.srt")
    assert read_embedded_stream(clips[clip], index, clip) == sidecar


def test_embedded_ass_stream_reads_as_the_sidecar(clips: dict[str, Path], tmp_path: Path) -> None:
    # Read as ASS, not SRT: ffmpeg's SRT encoder would keep the sign's drawing commands as text.
    sidecar = parse_subtitles(write(tmp_path, "fr.ass", ASS), "fr.ass")
    assert read_embedded_stream(clips["mkv"], 1, "two.mkv") == sidecar


def test_embedded_stream_that_is_not_text_subtitles(clips: dict[str, Path]) -> None:
    with pytest.raises(
        SubtitleError, match=r"^cannot read subtitle stream 0 of 'two\.mkv': it is a video stream \(h264\)"
    ):
        read_embedded_stream(clips["mkv"], 0, "two.mkv")
    with pytest.raises(SubtitleError, match=r"stream 5 of 'two\.mkv': no such stream \(the file has 3\)"):
        read_embedded_stream(clips["mkv"], 5, "two.mkv")


def test_embedded_ass_streams_without_events_are_empty(tmp_path: Path) -> None:
    # What splitting a file leaves: ASS tracks whose script header survives but whose events do not.
    empty = write(tmp_path, "empty.ass", EMPTY_ASS)
    split = mux(tmp_path / "split.mkv", [(empty, "ass", "eng"), (empty, "ass", "fre")])
    assert embedded_text_streams(split) == [(1, "eng", "ass"), (2, "fre", "ass")]
    assert read_embedded_stream(split, 1, "split.mkv") == []
    assert read_embedded_stream(split, 2, "split.mkv") == []


def test_streams_of_a_file_that_is_not_media(tmp_path: Path) -> None:
    path = tmp_path / "noise.mkv"
    path.write_bytes(random.Random(1).randbytes(4096))
    with pytest.raises(MediaError, match=r"cannot read the streams of 'noise\.mkv'"):
        embedded_text_streams(path)
    with pytest.raises(MediaError, match=r"cannot read the streams of 'Movie \(2024\)\.mkv'"):
        embedded_text_streams(path, name="Movie (2024).mkv")
