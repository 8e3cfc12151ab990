"""Every code example in README.md and docs/*.md runs, so none of them rots.

The convention (docs/cli.md and every other page are written to it):

* Each Markdown file is one test (parametrized over the files found, so a new page is picked up
  automatically). Its code blocks run in document order, with the current working directory a
  fresh temporary directory for that file (``tmp_path`` + ``monkeypatch.chdir``).
* Blocks fenced as ```` ```python ```` are executed in order in one namespace shared by the
  whole file, so a later block may use what an earlier one defined. ``__name__`` is
  ``"__main__"`` there, as in a script (so ``if __name__ == "__main__":`` blocks run).
* Blocks fenced as ```` ```console ```` are executed too. Each line beginning with ``$ `` is a
  shell command, run with ``bash`` in that same directory, with the current Python environment's
  ``bin`` directory first on ``PATH`` (so ``crackle-zarr`` and ``python`` are the ones under
  test). A command must exit 0, unless its line ends with the comment ``# exit 1``, in which case
  it must exit 1. Each command runs in its own ``bash`` process, so ``cd`` and shell variables
  do not carry over to the next one. A command line ending in ``\\`` continues on the next
  line. Other lines of a console block are shown output and are not compared. Lines beginning
  with ``$ pip install`` are skipped: the test environment has the packages already.
* Blocks with any other info string (```` ```text ````, ```` ```json ````, ```` ```sh ````, or
  none) are not executed: use them for output, signatures, and commands that must not run here
  (the README's install and test commands).

Examples must run on a fresh clone with no data (no ``../shared``), and fast: small arrays.
A failure names the file and the line of the block (and of the command) that failed.

A second test checks that every relative link in those files points to a file that exists (and
to one of its headings, for a link with an anchor), and a third that docs/draw_cracks.py, which
draws docs/cracks.png, still runs (skipped without matplotlib).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
DOC_IDS = [str(p.relative_to(ROOT)) for p in DOC_FILES]

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
EXIT_1 = re.compile(r"#\s*exit 1\s*$")
COMMAND_TIMEOUT = 120  # seconds per shell command


@dataclass
class Block:
    info: str    # first word of the info string ("python", "console", "text", "" ...)
    line: int    # 1-based line number of the opening fence
    lines: list  # the block's lines, without the fences


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    current: Block | None = None
    close = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if current is None:
            m = FENCE.match(line)
            if m:
                close = m["fence"]
                info = m["info"].strip().split()
                current = Block(info[0].lower() if info else "", number, [])
        elif line.strip().startswith(close) and set(line.strip()) == {close[0]}:
            blocks.append(current)
            current = None
        else:
            current.lines.append(line)
    if current is not None:
        raise ValueError(f"unclosed code block starting at line {current.line}")
    return blocks


def console_commands(block: Block) -> list[tuple[int, str, int]]:
    """(line number, command, expected exit code) for each ``$ `` line of a console block."""
    commands = []
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(block.lines, start=1):
        line = raw.strip()
        if not pending:
            if not line.startswith("$ "):
                continue  # shown output
            start = block.line + offset
            line = line[2:]
        if line.endswith("\\"):
            pending.append(line[:-1].rstrip())
            continue
        command = " ".join([*pending, line]).strip()
        pending = []
        if re.match(r"pip3?\s+install\b|python3?\s+-m\s+pip\s+install\b", command):
            continue
        commands.append((start, command, 1 if EXIT_1.search(command) else 0))
    return commands


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def run_python(block: Block, namespace: dict, where: str, filename: str | None = None) -> None:
    # Pad with blank lines so tracebacks give the line number in the Markdown file (and, with
    # its absolute path as ``filename``, show the line itself).
    source = "\n" * block.line + "\n".join(block.lines) + "\n"
    try:
        exec(compile(source, filename or where, "exec"), namespace)
        return
    except Exception as exc:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next))
    pytest.fail(f"{where}:{block.line}: ```python block failed:\n{tb}", pytrace=False)


def run_console(block: Block, cwd: Path, where: str) -> None:
    for line, command, expected in console_commands(block):
        proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=_env(), capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT)
        if proc.returncode != expected:
            pytest.fail(
                f"{where}:{line}: `$ {command}` exited {proc.returncode}, expected {expected}\n"
                f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}", pytrace=False)


@pytest.mark.parametrize("path", DOC_FILES, ids=DOC_IDS)
def test_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # what commands keep there (the demo's array) goes too
    where = str(path.relative_to(ROOT))
    namespace: dict = {"__name__": "__main__"}
    for block in code_blocks(path.read_text(encoding="utf-8")):
        if block.info == "python":
            run_python(block, namespace, where, str(path))
        elif block.info == "console":
            run_console(block, tmp_path, where)


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file (outside code blocks)."""
    text = path.read_text(encoding="utf-8")
    in_code, seen, result = False, {}, set()
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        m = None if in_code else HEADING.match(line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m["title"].replace("`", "").lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            result.add(slug if n == 0 else f"{slug}-{n}")
    return result


@pytest.mark.parametrize("path", DOC_FILES, ids=DOC_IDS)
def test_relative_links_exist(path: Path) -> None:
    """Every relative link points to a file that exists, and to a heading of it if it names one."""
    text = path.read_text(encoding="utf-8")
    missing = []
    for number, line in enumerate(text.splitlines(), start=1):
        for m in LINK.finditer(line):
            target, _, anchor = m["target"].partition("#")
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # a URL
            file = path.parent / target if target else path
            if not file.exists():
                missing.append(f"{path.relative_to(ROOT)}:{number}: {m['target']} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                missing.append(f"{path.relative_to(ROOT)}:{number}: {m['target']} (no such heading)")
    assert not missing, "broken relative links:\n" + "\n".join(missing)


def test_readme_commands_are_shown_not_run() -> None:
    """CI runs the README's test command; the docs test must not run it (nor the install)."""
    blocks = code_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    shown = ["\n".join(b.lines) for b in blocks if b.info not in ("python", "console")]
    assert any('pip install -e ".[test]" && pytest' in text for text in shown)
    for block in blocks:
        if block.info == "console":
            assert all("pytest" not in command for _, command, _ in console_commands(block))


def test_parser() -> None:
    text = "a\n```python\nx = 1\n```\n\n```console\n$ echo hi \\\n  there\nhi there\n" \
           "$ false  # exit 1\n$ pip install foo\n```\n```\nplain\n```\n"
    blocks = code_blocks(text)
    assert [(b.info, b.line) for b in blocks] == [("python", 2), ("console", 6), ("", 13)]
    assert blocks[0].lines == ["x = 1"]
    assert console_commands(blocks[1]) == [(7, "echo hi there", 0), (10, "false  # exit 1", 1)]


def test_draw_cracks_script(tmp_path: Path) -> None:
    """docs/draw_cracks.py (which draws docs/cracks.png) still runs; needs matplotlib, a doc-build tool."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "cracks.png"
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "draw_cracks.py"), str(out)],
                          env=_env(), capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000
