"""The code blocks of README.md and docs/*.md, found with Sybil's Markdown lexers.

Conventions the documentation follows :

- A fenced block's info string is its language, optionally followed by
  ``title="NAME"`` (Material for MkDocs shows it as the block's file name). A titled
  block is a file of the page's example project: every titled block of a page is
  written into one temporary directory under its title.
- ``python`` blocks are ruff-formatted (``ruff format --check .`` reads Markdown). An
  untitled one is a script, run with Python in the page's project directory.
- ``console`` blocks hold ``$ command`` lines, each followed by lines of its expected
  output: lines are matched in order (others may sit between them), ``...`` stands for
  any text and a number with a decimal point for any such number (times, versions).
  Commands run in the page's project directory.
- ``yaml`` blocks are parsed; the ``pytest`` commands of their ``run:`` steps are run
  in the page's project directory. A yaml block holding ``apiVersion: pytest-chaos/v1``
  is a YAML experiment: titled ``chaos_*.yaml``, loaded by pytest-chaos's loader (it
  must load, unless a console block of the page runs it expecting a non-zero exit), and
  a test file of the page's project like ``test_*.py``.
- An HTML comment right before a block changes how it is tested, and says why:
  ``<!-- docs: fragment -->`` (Python that only makes sense inside a larger program:
  compiled, not run), ``<!-- docs: compile-only: REASON -->`` (compiled, not run, for
  the reason given, e.g. it needs Docker), ``<!-- docs: not-run: REASON -->`` (a
  console block whose commands are not run), ``<!-- docs: exit N -->`` (a console
  block whose last command exits with status N).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sybil import Document, Region
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: languages a block may have; anything else is a mistake in the docs
LANGUAGES = {"python", "console", "yaml", "ini", "toml", "json", "text", ""}
#: languages whose blocks are examples (text blocks show output, untyped ones diagrams)
EXAMPLES = {"python", "console", "yaml", "ini", "toml", "json"}
KINDS = {"fragment", "compile-only", "not-run", "exit"}

_INFO = re.compile(r"(?P<info>[^\n]*)$\n", re.MULTILINE)
_TITLE = re.compile(r'^(?P<lang>[\w-]*)(?:\s+title="(?P<title>[^"]+)")?\s*$')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    title: str | None
    source: str
    kind: str = ""  # "" (run), fragment, compile-only, not-run, exit
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def expected_exit(self) -> int:
        return int(self.reason) if self.kind == "exit" else 0


def _fences(document: Document) -> list[Region]:
    lexer = RawFencedCodeBlockLexer(
        info_pattern=_INFO, mapping={"info": "info", "source": "source"}
    )
    return list(lexer(document))


def _directives(document: Document) -> list[Region]:
    lexer = DirectiveInHTMLCommentLexer(directive="docs", arguments=".*?")
    return list(lexer(document))


def parse_page(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the directive that precedes it, if any."""
    document = Document(page.read_text(encoding="utf-8"), str(page))
    directives = _directives(document)
    blocks: list[Block] = []
    for region in _fences(document):
        info = str(region.lexemes["info"]).strip()
        match = _TITLE.match(info)
        if match is None:
            raise ValueError(f"{page}: unreadable info string {info!r}")
        lang = match["lang"]
        if lang not in LANGUAGES:
            raise ValueError(f"{page}: language {lang!r} is not one of {sorted(LANGUAGES)}")
        kind = reason = ""
        for directive in directives:
            # the lexer's region ends before the comment's closing "-->"
            between = document.text[directive.end : region.start].replace("-->", "", 1)
            if directive.end <= region.start and not between.strip():
                kind, _, reason = str(directive.lexemes["arguments"]).partition(":")
                if kind.startswith("exit "):
                    kind, reason = "exit", kind.split()[1]
                kind, reason = kind.strip(), reason.strip()
                if kind not in KINDS:
                    raise ValueError(f"{page}: unknown docs directive {kind!r}")
        line = document.text.count("\n", 0, region.start) + 1
        blocks.append(
            Block(page, line, lang, match["title"], str(region.lexemes["source"]), kind, reason)
        )
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in parse_page(page)]


_DECIMAL = re.compile(r"\d+(?:\.\d+)+")


def _line_pattern(wanted: str) -> re.Pattern[str]:
    parts = []
    for part in wanted.strip().split("..."):
        pieces = _DECIMAL.split(part)
        parts.append(r"\d+(?:\.\d+)*".join(re.escape(piece) for piece in pieces))
    return re.compile(".*".join(parts))


def output_matches(expected: list[str], output: str) -> str | None:
    """``None`` when every expected line occurs in ``output`` in order, else the first
    line that does not."""
    lines = [line.rstrip() for line in output.splitlines()]
    position = 0
    for wanted in expected:
        pattern = _line_pattern(wanted)
        for index in range(position, len(lines)):
            if pattern.fullmatch(lines[index].strip()):
                position = index + 1
                break
        else:
            return wanted
    return None


def split_console(source: str) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines)]`` of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:].strip(), []))
        elif steps and line.strip():
            steps[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"console line {line!r} comes before any '$ ' command")
    return steps
