"""``mediamesh eval shots`` end to end on short real clips, and the ``eval`` group around it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from mediamesh.features.shots import DEFAULT_DETECTOR
from mediamesh.orchestrator.interfaces.cli import app, console
from mediamesh.orchestrator.interfaces.cli.evaluation import _unless_subcommand

DATA = Path(__file__).resolve().parents[1] / "data"
# issue-134-rotate.mp4 (23.976 fps) has hard cuts at 3.754 and 8.759 s. The reference below moves the
# first one frame later and adds one that is not there, so that every kind of agreement shows.
ONE_FRAME_LATE = 3.796
NOT_A_CUT = 6.0


def _reference(tmp_path: Path) -> Path:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "rotate.mp4").symlink_to(DATA / "issue-134-rotate.mp4")
    csv_path = tmp_path / "cuts.csv"
    rows = [f"clips/rotate.mp4,{t}" for t in (8.759, NOT_A_CUT, ONE_FRAME_LATE)]
    csv_path.write_text("\n".join(["path,cut_seconds", *rows, f"{DATA / 'counter.mp4'},", ""]), encoding="utf-8")
    return csv_path


def _words(output: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─┃━┏┓┗┛┡┩└┘┌┐├┤┼┬┴]", " ", output).split())


def test_eval_shots_scores_the_default_detector_per_clip_and_overall(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "shots", "--json", str(_reference(tmp_path))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tolerance_frames"] == 1 and list(report["detectors"]) == [DEFAULT_DETECTOR]
    rotate, counter = report["detectors"][DEFAULT_DETECTOR]["clips"]

    assert (rotate["path"], rotate["frames"], rotate["fps"]) == (
        "clips/rotate.mp4",
        240,
        pytest.approx(23.976, abs=1e-3),
    )
    assert rotate["reference_cuts"] == [ONE_FRAME_LATE, NOT_A_CUT, 8.759]
    assert rotate["cuts"] == pytest.approx([3.754, 8.759], abs=1e-3)
    within, exact = rotate["tolerance"], rotate["exact"]
    assert (within["matched"], within["reference"], within["detected"]) == (2, 3, 2)
    assert (within["precision"], within["recall"]) == (1.0, pytest.approx(2 / 3))
    assert (within["missed"], within["extra"]) == ([NOT_A_CUT], [])
    assert (exact["matched"], exact["missed"], exact["extra"]) == (1, [ONE_FRAME_LATE, NOT_A_CUT], rotate["cuts"][:1])
    assert (exact["precision"], exact["recall"], exact["f1"]) == (0.5, pytest.approx(1 / 3), pytest.approx(0.4))

    assert (counter["frames"], counter["cuts"], counter["gradual"]) == (30, [], [])
    assert (counter["tolerance"]["f1"], counter["exact"]["f1"]) == (1.0, 1.0)

    overall = report["detectors"][DEFAULT_DETECTOR]["overall"]
    assert (overall["clips"], overall["frames"], overall["gradual"]) == (2, 270, 0)
    assert overall["tolerance"] == {
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "matched": 2,
        "reference": 3,
        "detected": 2,
    }
    assert (overall["exact"]["matched"], overall["exact"]["f1"]) == (1, pytest.approx(0.4))


def test_eval_shots_prints_a_table_and_the_cuts_that_disagree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The console's width is read when it is made; a terminal 200 columns wide keeps the table whole.
    monkeypatch.setattr(console.out, "width", 200)
    csv_path = tmp_path / "cuts.csv"
    csv_path.write_text(f"path,cut_seconds\n{DATA / 'counter.mp4'},1.5\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["eval", "shots", "--detector", "content", "--tolerance", "2", str(csv_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    said = _words(result.stdout)
    assert "within 2 frame(s) and frame-exact" in said and "F1 ±2" in said
    assert "overall content 1 0 0 1.000 0.000 0.000 1.000 0.000 0.000" in said
    assert f"content on {DATA / 'counter.mp4'}: missed 1.500" in said


def test_eval_shots_refuses_an_unknown_detector_before_reading_anything(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "shots", "--detector", "contnet", str(tmp_path / "none.csv")])
    assert result.exit_code == 2
    assert "no detector 'contnet'" in _words(result.output) and "Did you mean 'content'?" in _words(result.output)


def test_mediafm_options_before_a_subcommand_are_refused() -> None:
    result = CliRunner().invoke(app, ["eval", "--checkpoint", "3f9c", "shots", "cuts.csv"])
    assert result.exit_code == 2
    assert "--checkpoint: these options belong to `mediamesh eval mediafm`" in _words(result.output)


def test_eval_alone_and_eval_mediafm_take_the_same_options() -> None:
    runner = CliRunner()
    alone = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    mediafm = runner.invoke(app, ["eval", "mediafm", "--help"], env={"COLUMNS": "200"})
    assert alone.exit_code == mediafm.exit_code == 0
    for option in ("--checkpoint", "--labels", "--json"):
        assert option in alone.output and option in mediafm.output
    assert "shots" in alone.output and "mediafm" in alone.output


def test_a_group_without_a_subcommand_runs_its_default_command_with_the_options_given() -> None:
    calls: list[tuple[str | None, bool]] = []

    def default(
        checkpoint: Annotated[str | None, typer.Option()] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        calls.append((checkpoint, as_json))

    group = typer.Typer(invoke_without_command=True)
    group.callback()(_unless_subcommand(default))
    group.command(name="default")(default)
    group.command(name="other")(lambda: calls.append(("other", False)))
    runner = CliRunner()
    assert runner.invoke(group, ["--checkpoint", "3f9c", "--json"]).exit_code == 0
    assert runner.invoke(group, ["default", "--checkpoint", "ab"]).exit_code == 0
    assert runner.invoke(group, ["other"]).exit_code == 0
    assert calls == [("3f9c", True), ("ab", False), ("other", False)]
