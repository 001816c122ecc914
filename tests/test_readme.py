"""README.md cannot drift: its examples run, and its tables list every CLI command and built-in feature.

The feature author's example is saved as ``brightness.py`` and the ``Mesh`` snippet is run beside it, in a
subprocess, on a fresh home and database with the lite encoders and the session's Prefect server. The
dev-stack example runs in ``tests/orchestrator/test_devstack.py``, against the stack that test starts.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from mediamesh.features import default_registry
from mediamesh.orchestrator.interfaces.cli import app
from tests.readme import MARKS, README, block, blocks

CLIP = Path(__file__).parent / "data" / "counter.mp4"


def _env(home: Path, database_url: str, prefect_api: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAMESH_", "PREFECT_"))}
    scratch = home.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    env.update(
        {
            "MEDIAMESH_HOME": str(home),
            "MEDIAMESH_DATABASE_URL": database_url,
            "PREFECT_API_URL": prefect_api,
            "MEDIAMESH_ENCODERS": "lite",
            "MEDIAMESH_DEVICE": "cpu",
            "MEDIAMESH_CONFIG": str(home.parent / "no-config.toml"),
            "TMPDIR": str(scratch),
        }
    )
    return env


def _run_mesh_snippet(folder: Path, feature_module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The README's Mesh snippet, run beside ``feature_module`` saved as brightness.py and a movie.mp4."""
    folder.mkdir(exist_ok=True)
    (folder / "brightness.py").write_text(feature_module, encoding="utf-8")
    (folder / "snippet.py").write_text(block("mesh"), encoding="utf-8")
    shutil.copyfile(CLIP, folder / "movie.mp4")
    return subprocess.run(
        [sys.executable, "snippet.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _with_empty_body(module: str, function: str) -> str:
    """``module`` with ``function``'s body (but its docstring) replaced by ``...``, as the README once had it."""
    tree = ast.parse(module)
    [fn] = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function]
    fn.body = [*fn.body[:1], ast.Expr(ast.Constant(...))]
    return ast.unparse(tree)


@pytest.mark.slow
def test_the_feature_example_and_the_mesh_snippet_run(tmp_path: Path, database_url: str, prefect_api: str) -> None:
    """First the example broken as the README once had it (the body ``...``): the snippet must fail, or this
    test could not tell a working example from one that stores nothing. Then the example as written, on the
    same home and database, computes the value the broken one could not (its failure poisoned no key).
    """
    env = _env(tmp_path / "home", database_url, prefect_api)
    feature_module = block("feature-module")

    broken = _run_mesh_snippet(tmp_path / "broken", _with_empty_body(feature_module, "brightness"), env)
    said = broken.stdout + broken.stderr
    assert broken.returncode != 0, said
    assert "1 failed" in broken.stdout and "NoneType" in broken.stdout, said
    assert "ValueNotFoundError: asset" in broken.stderr and "has no stored brightness" in broken.stderr, said

    works = _run_mesh_snippet(tmp_path / "example", feature_module, env)
    said = works.stdout + works.stderr
    assert works.returncode == 0, said
    counts, value = works.stdout.strip().splitlines()[-2:]
    assert re.fullmatch(r"\d+ computed, 0 failed", counts), said
    ref, _worker, mean = value.split()
    assert ref == "brightness@1"
    assert 0 < float(mean) < 255, value


def test_every_python_block_is_marked_and_every_mark_is_run() -> None:
    found = blocks()
    unmarked = [b.line for b in found if b.language == "python" and b.mark is None]
    assert not unmarked, f"README.md lines {unmarked}: mark each Python block <!-- test: NAME -->, NAME in {MARKS}"
    unknown = sorted({b.mark for b in found if b.mark is not None} - MARKS)
    assert not unknown, f"README.md marks no test runs: {unknown}"
    for name in MARKS - {"run"}:
        block(name)  # exactly one each


def test_the_blocks_marked_run_run_on_their_own(tmp_path: Path) -> None:
    """Each ``run`` block as a script of its own, in a fresh folder with a fresh home (none yet: the mark is
    for self-contained examples, such as a plugin's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAMESH_", "PREFECT_"))}
    for number, code in enumerate(b.code for b in blocks() if b.mark == "run"):
        folder = tmp_path / str(number)
        folder.mkdir()
        (folder / "example.py").write_text(code, encoding="utf-8")
        run_env = {**env, "MEDIAMESH_HOME": str(folder / "home")}
        done = subprocess.run(
            [sys.executable, "example.py"], cwd=folder, env=run_env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{code}\n{done.stdout}{done.stderr}"


def test_the_block_finder_reads_marks_languages_and_indented_fences() -> None:
    text = "intro\n<!-- test: run -->\n```python\nprint(1)\n```\n- item\n\n  ```\n  a,b\n  ```\n```python\nx\n```\n"
    assert [(b.mark, b.language, b.code, b.line) for b in blocks(text)] == [
        ("run", "python", "print(1)\n", 3),
        (None, "", "a,b\n", 8),
        (None, "python", "x\n", 11),
    ]


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_cli_table_lists_every_command_and_its_options() -> None:
    """A group (``eval``) may take several rows; its subcommands' names and options must be in them."""
    rows: dict[str, str] = {}
    for m in re.finditer(r"^\| `mediamesh ([\w-]+).*$", _section("The CLI"), re.M):
        rows[m[1]] = rows.get(m[1], "") + m[0]
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    shown = {name: command for name, command in commands.items() if not command.hidden}
    assert set(rows) == set(shown)
    missing = {
        name: [f"{name} {sub}" for sub in getattr(command, "commands", {}) if f"{name} {sub}" not in rows[name]]
        + [
            opt
            for each in (command, *getattr(command, "commands", {}).values())
            for param in each.params
            for opt in param.opts
            if opt.startswith("--") and opt not in rows[name]
        ]
        for name, command in shown.items()
    }
    assert {name: opts for name, opts in missing.items() if opts} == {}


def test_the_builtin_features_table_lists_every_builtin_feature_at_its_version() -> None:
    rows = re.findall(r"^\| `(\w+@\w+)` \|", _section("Built-in features"), re.M)
    assert sorted(rows) == sorted(spec.ref for spec in default_registry().values())
