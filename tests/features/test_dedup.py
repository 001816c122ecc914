"""Near-duplicate shots on real standardized encodes: a synthetic title with repeats, and real clips."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mediamesh.features.dedup import dedup, dhash, representatives, sample_frames
from mediamesh.features.encode import encode
from mediamesh.features.errors import InputFileError, MediaError
from mediamesh.features.media import ffmpeg_exe
from mediamesh.features.shots import shots
from mediamesh.features.spec import spec_of
from mediamesh.features.values import DedupMap, EncodedMedia, Shot, ShotTable, SourceMedia

DATA = Path(__file__).resolve().parents[1] / "data"

# One second each of three lavfi sources, in the order A B A' C B, where A' is A with film grain and
# a brighter picture: a repeat no frame of which is byte-identical to the first.
SEGMENTS = "ABACB"
LAVFI = {
    "A": "testsrc2=size=320x240:rate=24:duration=1",
    "B": "smptebars=size=320x240:rate=24:duration=1",
    "C": "mandelbrot=size=320x240:rate=24",
}


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[SourceMedia, EncodedMedia]]]:
    """The originals and default encodes of the synthetic A B A' C B title and of two real clips."""
    source = tmp_path_factory.mktemp("dedup") / "abacb.mp4"
    graph = (
        "[0]split[a1][a2];[a2]noise=alls=12:allf=t,eq=brightness=0.04[a2n];[1]split[b1][b2];"
        "[2]trim=duration=1[c];[a1][b1][a2n][c][b2]concat=n=5:v=1:a=0"
    )
    inputs = [arg for segment in "ABC" for arg in ("-f", "lavfi", "-i", LAVFI[segment])]
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph, str(source)],
        check=True,
        capture_output=True,
    )
    originals = [SourceMedia(asset="abacb", path=source, name="abacb.mp4")]
    originals += [SourceMedia(asset=n, path=DATA / n, name=n) for n in ("testvideo.mp4", "issue-195-aspect-ratio.mp4")]
    values = {str(o.name): (o, encode(o)) for o in originals}
    yield values
    for _, value in values.values():
        shutil.rmtree(value.path.parent, ignore_errors=True)


def check_invariants(value: DedupMap, count: int) -> None:
    assert len(value.representative) == count
    for j, r in enumerate(value.representative):
        assert r <= j
        assert value.representative[r] == r


def test_repeated_segments_map_to_their_first_showing(encoded: dict[str, tuple[SourceMedia, EncodedMedia]]) -> None:
    original, title = encoded["abacb.mp4"]
    table = shots(original, title)
    assert [(s.start_frame, s.end_frame) for s in table.shots] == [(0, 24), (24, 48), (48, 72), (72, 96), (96, 120)]
    value = dedup(title, table)
    assert value == DedupMap(representative=(0, 1, 0, 3, 1), method="dhash64x3<=6")
    assert value.unique == (0, 1, 3)
    assert dedup(title, table, frames=1, max_distance=0).representative == (0, 1, 0, 3, 1)


def test_distinct_shots_of_a_real_clip_are_all_unique(encoded: dict[str, tuple[SourceMedia, EncodedMedia]]) -> None:
    original, title = encoded["issue-195-aspect-ratio.mp4"]
    table = shots(original, title)
    assert len(table) == 6
    assert dedup(title, table).representative == (0, 1, 2, 3, 4, 5)


def test_testvideo_has_four_distinct_shots_once_no_cut_is_invented(
    encoded: dict[str, tuple[SourceMedia, EncodedMedia]],
) -> None:
    # Judged on the 24 fps encode, testvideo.mp4 once had three more cuts (7.125, 11.958, 23.042 s) that
    # split its scenes into shots dedup then matched to each other; on the original's frames there are none.
    original, title = encoded["testvideo.mp4"]
    table = shots(original, title)
    value = dedup(title, table)
    check_invariants(value, len(table))
    assert [s.start_time for s in table.shots] == [0.0, 1.0, 6.0, 13.166667]
    assert value.representative == (0, 1, 2, 3)


def test_hand_built_table_with_one_frame_shots(encoded: dict[str, tuple[SourceMedia, EncodedMedia]]) -> None:
    # Each showing of the colour bars B is split into its first frame alone and the rest; B is a still
    # picture, so one frame of it is a repeat of any other.
    table = ShotTable.from_frames(24.0, [(0, 24), (24, 25), (25, 48), (48, 72), (72, 96), (96, 97), (97, 120)])
    assert dedup(encoded["abacb.mp4"][1], table).representative == (0, 1, 1, 0, 4, 1, 1)


def test_shots_beyond_the_encode(encoded: dict[str, tuple[SourceMedia, EncodedMedia]]) -> None:
    table = ShotTable.from_frames(24.0, [(0, 100), (100, 200)])
    with pytest.raises(MediaError, match=r"encode 'encode\.mp4' has 120 frames, but the shots need frame 183"):
        dedup(encoded["abacb.mp4"][1], table)


def test_no_shots_decodes_nothing() -> None:
    value = dedup(
        EncodedMedia(
            path=DATA / "counter.mp4", width=1, height=1, fps=24.0, frame_count=0, duration=0, has_audio=False
        ),
        ShotTable(fps=24.0, shots=()),
    )
    assert value == DedupMap(representative=(), method="dhash64x3<=6")


def test_missing_encode_file(tmp_path: Path) -> None:
    gone = EncodedMedia(
        path=tmp_path / "encode.mp4", width=640, height=360, fps=24.0, frame_count=10, duration=0.4, has_audio=False
    )
    with pytest.raises(InputFileError, match=r"encode 'encode\.mp4' does not exist"):
        dedup(gone, ShotTable.from_frames(24.0, [(0, 10)]))


@pytest.mark.parametrize(("params", "message"), [({"frames": 0}, "frames"), ({"max_distance": 65}, "max_distance")])
def test_bad_params(encoded: dict[str, tuple[SourceMedia, EncodedMedia]], params: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=rf"^dedup: {message} must be"):
        dedup(encoded["abacb.mp4"][1], ShotTable.from_frames(24.0, [(0, 10)]), **params)


def test_sample_frames_are_spread_over_the_shot() -> None:
    assert sample_frames(Shot(0, 0, 24, 0.0, 1.0), 3) == [4, 12, 20]
    assert sample_frames(Shot(1, 100, 101, 0.0, 1.0), 3) == [100, 100, 100]
    assert sample_frames(Shot(2, 10, 12, 0.0, 1.0), 3) == [10, 11, 11]
    assert sample_frames(Shot(3, 10, 20, 0.0, 1.0), 1) == [15]


def test_representatives_only_point_at_unique_shots() -> None:
    base = np.uint64(0x0123_4567_89AB_CDEF)
    near = base ^ np.uint64(0b11111)  # 5 bits from base
    nearer_to_near = near ^ np.uint64(0b11111 << 40)  # 5 bits from near, 10 from base
    far = ~base
    hashes = np.array([[base, base], [near, near], [nearer_to_near, nearer_to_near], [far, far]], dtype=np.uint64)
    # Shot 2 is close to shot 1, but shot 1 repeats shot 0, and shot 2 is 10 bits from shot 0.
    assert representatives(hashes, 6) == (0, 0, 2, 3)
    assert representatives(hashes, 10) == (0, 0, 0, 3)
    assert representatives(hashes, 4) == (0, 1, 2, 3)


def test_every_sampled_frame_must_match() -> None:
    base = np.uint64(0xFFFF_0000_FFFF_0000)
    hashes = np.array([[base, base, base], [base, base, ~base]], dtype=np.uint64)
    assert representatives(hashes, 6) == (0, 1)


def test_dhash_compares_each_pixel_with_its_left_neighbour() -> None:
    ramp = np.tile(np.arange(0, 90, 10, dtype=np.uint8), (8, 1))  # 9 columns, brighter to the right
    assert dhash(ramp) == 2**64 - 1
    assert dhash(ramp[:, ::-1].copy()) == 0
    assert dhash(np.full((360, 640), 128, dtype=np.uint8)) == 0


def test_dedup_is_a_plain_function_with_a_spec() -> None:
    spec = spec_of(dedup)
    assert spec is not None
    assert (spec.ref, spec.input_names, spec.output) == ("dedup@1", ("encode", "shots"), DedupMap)
    assert dict(spec.params) == {"frames": 3, "max_distance": 6}
