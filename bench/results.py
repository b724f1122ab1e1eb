"""bench/RESULTS.md as a head (bench.extract's tables) and `## ` sections that other benches own: each
bench replaces only its own part, so that running one bench keeps what the others measured."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# Benchmark results"


def _split(text: str) -> tuple[str, dict[str, str]]:
    """The head (up to the first `## ` heading) and each section's text, heading line included."""
    parts = re.split(r"(?m)^(?=## )", text)
    head, sections = parts[0], {}
    for part in parts[1:]:
        sections[part.splitlines()[0]] = part
    return head, sections


def _read() -> str:
    return RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else f"{TITLE}\n"


def _write(head: str, sections: dict[str, str]) -> None:
    body = [head.rstrip("\n"), *(text.strip("\n") for text in sections.values())]
    RESULTS.write_text("\n\n".join(body) + "\n", encoding="utf-8")


def write_head(text: str) -> None:
    """Replace the head (title and bench.extract's tables), keeping every section."""
    _, sections = _split(_read())
    _write(text, sections)


def write_section(heading: str, text: str) -> None:
    """Replace the section `heading` (`## …`, the first line of `text`), or add it at the end."""
    if not text.startswith(f"{heading}\n"):
        raise ValueError(f"a section's text starts with its heading {heading!r}")
    head, sections = _split(_read())
    sections[heading] = text
    _write(head, sections)
