"""bench/RESULTS.md: the extract's tables first (bench/extract.py rewrites them), then one `## ` section
per other benchmark (Start-up, Day 2), each replaced in place by its own module, the others kept."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _split(text: str) -> tuple[str, list[str]]:
    """The part before the first `## ` heading, and each `## ` section (heading included) in order."""
    parts = ("\n" + text).split("\n## ")
    return parts[0].lstrip("\n"), ["## " + part.rstrip("\n") for part in parts[1:]]


def saved_sections() -> str:
    """Every `## ` section as the file holds it now ('' if none), each preceded by a blank line."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    return "".join(f"\n{section}\n" for section in _split(text)[1])


def write_section(heading: str, text: str) -> None:
    """Replace the section `heading` (its text starts with that heading line), or add it at the end."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    head, sections = _split(current)
    replaced = [text.rstrip("\n") if s.split("\n", 1)[0] == heading else s for s in sections]
    if replaced == sections and not any(s.split("\n", 1)[0] == heading for s in sections):
        replaced.append(text.rstrip("\n"))
    body = "\n\n".join([head.rstrip("\n"), *replaced])
    RESULTS.write_text(body + "\n", encoding="utf-8")
