"""The code blocks README.md marks to be run: ``<!-- test: NAME -->`` on the line right above the fence.

``tests/test_readme.py`` runs ``feature-module`` (saved as ``brightness.py``), ``mesh`` (beside it) and every
``run`` block (a script on its own); ``tests/orchestrator/test_devstack.py`` runs ``devstack`` against the stack
it starts. Every Python block in the README carries one of these marks, so none can drift untested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKS = frozenset({"feature-module", "mesh", "devstack", "run"})

_FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)\s*$")
_MARK = re.compile(r"^\s*<!-- test: (?P<name>[\w-]+) -->\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced code block: its mark (None if unmarked), language, code and the line its fence opens on."""

    mark: str | None
    language: str
    code: str
    line: int


def blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of ``text`` (default: README.md), in order."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening["indent"])
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        mark = _MARK.match(lines[index - 1]) if index > 0 else None
        code = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        found.append(Block(mark["name"] if mark else None, opening["language"], code, index + 1))
        index = end + 1
    return found


def block(mark: str) -> str:
    """The code of the one block marked ``mark``."""
    marked = [b for b in blocks() if b.mark == mark]
    if len(marked) != 1:
        raise LookupError(f"README.md has {len(marked)} blocks marked <!-- test: {mark} -->, not one")
    return marked[0].code
