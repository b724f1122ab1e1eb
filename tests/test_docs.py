"""The reference in docs/ keeps up with the code, and nothing points into the void.

- Every key the contract's pydantic models accept is named, in backticks, on the page for its section:
  campaign keys (`CampaignSpec` and the models inside it) in docs/campaigns.md, `direct_mail.yml` keys
  (`DirectMailConfig`, and every model of directmail/config.py) in docs/direct-mail-yml.md.
- Every command and option of the `directmail` CLI is in docs/cli.md, each option in its command's section.
- Every relative link of README.md and docs/*.md reaches a file, and its #anchor a heading.
- Every "see <file>" in README.md, docs/, direct_mail.yml, the Makefile and the Python sources names a
  file, folder, docs page or README section that exists.
- The YAML examples of the reference are accepted by the models they illustrate.

Fast: nothing here runs dbt, a warehouse or a server.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
import yaml
from pydantic import BaseModel

from directmail import config as config_module
from directmail.campaign import CampaignSpec
from directmail.cli import app
from directmail.config import DirectMailConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


# -- helpers --------------------------------------------------------------------------------------------


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def without_fences(text: str) -> str:
    """The text with fenced code blocks blanked out, every offset kept."""
    return FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def headings(text: str) -> list[tuple[int, str, int]]:
    """(level, text, offset) of every Markdown heading outside code blocks."""
    return [(len(m.group(1)), m.group(2), m.start()) for m in HEADING.finditer(without_fences(text))]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: links reduced to their text, lowercase, punctuation dropped
    (letters, digits, `_`, `-` and spaces kept), spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, … as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for _, title, _ in headings(text):
        slug = github_slug(title)
        found.add(slug if seen[slug] == 0 else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def in_backticks(text: str, word: str) -> bool:
    """`word` is a whole word of an inline code span (`--limit N`, `--run-time ISO8601`) in the prose;
    fenced examples do not count."""
    bounded = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")
    return any(bounded.search(m.group(2)) for m in CODE_SPAN.finditer(without_fences(text)))


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


# -- (a) every key of the contract's models -------------------------------------------------------------


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """Pydantic models anywhere in a type: X | None, list[X], dict[str, X], Annotated[...], unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in get_args(annotation):
        yield from models_in(argument)


def keys_of(roots: list[type[BaseModel]]) -> dict[str, set[str]]:
    """Key → the models that accept it, over the roots and every model nested in them."""
    keys: dict[str, set[str]] = {}
    pending, seen = list(roots), set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            keys.setdefault(field.alias or name, set()).add(model.__name__)
            pending.extend(models_in(field.annotation))
    return keys


def config_py_models() -> list[type[BaseModel]]:
    """Every routing, configuration and source model defined in directmail/config.py."""
    return [
        member
        for _, member in inspect.getmembers(config_module, inspect.isclass)
        if issubclass(member, BaseModel) and member.__module__ == config_module.__name__
    ]


SECTIONS = {
    "campaigns.md": lambda: [CampaignSpec],
    "direct-mail-yml.md": lambda: [DirectMailConfig, *config_py_models()],
}


def test_the_key_introspection_sees_nested_models():
    campaign_keys = keys_of([CampaignSpec])
    assert {"cron", "timezone", "at", "lines", "country", "count", "days"} <= set(campaign_keys)
    config_keys = keys_of([DirectMailConfig])
    assert {"known_hosts", "bucket", "connection_string", "split_threshold", "household_key"} <= set(
        config_keys
    )


@pytest.mark.parametrize("page", sorted(SECTIONS))
def test_every_contract_key_is_documented_on_its_page(page):
    prose = without_fences(read(DOCS / page))
    missing = {key: models for key, models in keys_of(SECTIONS[page]()).items() if f"`{key}`" not in prose}
    assert not missing, f"docs/{page} does not name these keys in backticks: " + ", ".join(
        f"`{key}` ({', '.join(sorted(models))})" for key, models in sorted(missing.items())
    )


# -- (b) every CLI command and option -------------------------------------------------------------------


def cli_commands() -> list[tuple[list[str], Any]]:
    """(path, command) for the root group and every command below it, nested groups included.

    Typer builds its commands on its own copy of click, so groups and options are recognized by what
    they have (`commands`, `param_type_name`), not by click's classes.
    """

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def option_names(command: Any) -> list[str]:
    return [
        name
        for param in command.params
        if param.param_type_name == "option" and param.name != "help"
        for name in (*param.opts, *param.secondary_opts)
    ]


def command_section(text: str, path: list[str]) -> str | None:
    """The text under the first heading naming `directmail <path>` in backticks, down to the next heading
    of the same or a higher level; None if no heading names it."""
    invocation = " ".join(["directmail", *path])
    found = headings(text)
    for index, (level, title, start) in enumerate(found):
        spans = [m.group(2).strip() for m in CODE_SPAN.finditer(title)]
        if any(span == invocation or span.startswith(invocation + " ") for span in spans):
            end = next((s for lvl, _, s in found[index + 1 :] if lvl <= level), len(text))
            return text[start:end]
    return None


def test_every_cli_command_and_option_is_documented():
    text = read(DOCS / "cli.md")
    problems = []
    for path, command in cli_commands():
        if not path:  # the global options: anywhere on the page
            section = text
        else:
            section = command_section(text, path)
            if section is None:
                problems.append(f"no heading for `directmail {' '.join(path)}`")
                continue
        for option in option_names(command):
            if not in_backticks(section, option):
                where = f"`directmail {' '.join(path)}`" if path else "the global options"
                problems.append(f"{where}: option `{option}` not documented")
    assert not problems, "docs/cli.md:\n  " + "\n  ".join(problems)


def test_the_cli_walk_sees_every_command():
    names = {" ".join(path) for path, _ in cli_commands()}
    assert {"validate", "list", "preview", "run", "report", "serve", "deploy"} <= names
    run = next(command for path, command in cli_commands() if path == ["run"])
    assert {"--run-time", "--dry-run", "--no-dry-run"} <= set(option_names(run))


# -- (c) relative links ---------------------------------------------------------------------------------


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *doc_pages()]


def links(text: str) -> list[str]:
    prose = CODE_SPAN.sub("code", without_fences(text))
    return [m.group(1) for m in LINK.finditer(prose)]


def link_problem(source: Path, target: str) -> str | None:
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # https:, mailto:
        return None
    path_part, _, anchor = target.partition("#")
    destination = (source.parent / path_part).resolve() if path_part else source
    if not destination.exists():
        return f"{target}: {path_part} does not exist"
    if anchor:
        if destination.suffix != ".md" or destination.is_dir():
            return f"{target}: an anchor into something that is not a Markdown file"
        if anchor not in anchors(read(destination)):
            return f"{target}: no heading with the anchor #{anchor} in {destination.name}"
    return None


@pytest.mark.parametrize("source", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(source):
    problems = [p for target in links(read(source)) if (p := link_problem(source, target))]
    assert not problems, f"{source.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_the_link_checks_catch_a_broken_link_and_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n[x](page.md#a-title) [y](missing.md) [z](#nope)\n", encoding="utf-8")
    problems = [link_problem(page, target) for target in links(read(page))]
    assert problems[0] is None and "does not exist" in problems[1] and "#nope" in problems[2]


def test_github_slugs():
    assert github_slug("Every `meta.direct_mail` key") == "every-metadirect_mail-key"
    assert github_slug("The run's time is the scheduled slot") == "the-runs-time-is-the-scheduled-slot"
    assert github_slug("`directmail run`") == "directmail-run"


# -- (d) "see <file>" references -----------------------------------------------------------------------

SEE = re.compile(r"\b[Ss]ee\b")
SENTENCE_END = re.compile(r"\.\s|\)|;|\n\s*\n|$")
README_REF = re.compile(r"\bREADME(?:\.md)?\b(?:[ ,]*(?:section\s*)?\"([^\"]+)\")?")
DOCS_REF = re.compile(r"(?<![\w/.-])docs/(?:[\w.-]+/)*[\w.-]*(?:#[\w-]+)?")
FILE_REF = re.compile(r"(?<![\w/.:-])(?:[\w-]+/)+[\w.-]*\w\.[A-Za-z][A-Za-z0-9]{0,4}\b")


def see_sources() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "direct_mail.yml", ROOT / "Makefile", *doc_pages()]
    for folder in ("directmail", "flows", "sampledata", "bench"):
        files += sorted((ROOT / folder).rglob("*.py"))
    for folder in ("models", "seeds", "macros", "data-tests"):  # the dbt project's YAML and SQL
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.suffix in (".yml", ".sql"))
    return [f for f in files if f.exists()]


def ignored_folders() -> set[str]:
    """Top-level folders .gitignore names (logs/, target/…): runtime output, not part of the project."""
    ignore = ROOT / ".gitignore"
    lines = read(ignore).splitlines() if ignore.exists() else []
    return {line.strip().strip("/") for line in lines if line.strip().endswith("/")}


def see_windows(text: str) -> Iterator[str]:
    """The words after each "see", to the end of the sentence (or 160 characters)."""
    for match in SEE.finditer(text):
        rest = text[match.end() : match.end() + 160]
        end = SENTENCE_END.search(rest)
        yield rest[: end.start()] if end else rest


def reference_problems(window: str) -> list[str]:
    problems = []
    readme = README_REF.search(window)
    if readme and readme.group(1):
        section = readme.group(1).strip().strip("`").lower()
        titles = [title.replace("`", "").lower() for _, title, _ in headings(read(ROOT / "README.md"))]
        if not any(section in title for title in titles):
            problems.append(f'README has no section "{readme.group(1)}"')
    candidates = [m.group(0) for m in DOCS_REF.finditer(window)] + [
        m.group(0) for m in FILE_REF.finditer(window)
    ]
    candidates += [m.group(2) for m in CODE_SPAN.finditer(window) if "/" in m.group(2)]
    ignored = ignored_folders()
    for candidate in dict.fromkeys(candidates):
        path_part, _, anchor = candidate.strip().partition("#")
        path_part = path_part.split(":", 1)[0]  # flows/campaign_flow.py:run_campaign_flow
        if not path_part or "://" in candidate or re.search(r"[<>{}*…]", path_part) or " " in path_part:
            continue
        if path_part.split("/", 1)[0].lstrip(".") in {i.lstrip(".") for i in ignored}:
            continue
        target = ROOT / path_part
        if not target.exists():
            problems.append(f"{candidate}: no such file or folder")
        elif anchor and target.suffix == ".md" and anchor not in anchors(read(target)):
            problems.append(f"{candidate}: no heading with that anchor")
    return problems


@pytest.mark.parametrize("source", see_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_see_reference_names_something_real(source):
    problems = [p for window in see_windows(read(source)) for p in reference_problems(window)]
    assert not problems, f"{source.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_the_see_checks_catch_a_missing_file_and_section():
    assert reference_problems(' README "No such section"') == ['README has no section "No such section"']
    assert reference_problems(" docs/nowhere.md for more") == ["docs/nowhere.md: no such file or folder"]
    assert reference_problems(" macros/generate_schema_name.sql") == []
    assert reference_problems(" logs/dbt.log") == []  # runtime output, git-ignored


def test_direct_mail_yml_points_to_its_reference_page():
    lines = read(ROOT / "direct_mail.yml").splitlines()
    assert (
        lines[0] == "# yaml-language-server: $schema=schemas/direct_mail.schema.json"
    )  # the editor's schema
    first_comment = next(line for line in lines[1:] if line.startswith("#"))
    assert "docs/direct-mail-yml.md" in first_comment


# -- (e) the examples are accepted by the models --------------------------------------------------------


def yaml_blocks(text: str) -> list[Any]:
    return [yaml.safe_load(m.group(1)) for m in re.finditer(r"^```yaml\n(.*?)^```", text, re.M | re.S)]


def test_the_direct_mail_yml_examples_are_valid():
    checked = 0
    for block in yaml_blocks(read(DOCS / "direct-mail-yml.md")):
        if isinstance(block, dict) and set(block) <= set(DirectMailConfig.model_fields):
            DirectMailConfig.model_validate(block)
            checked += 1
    assert checked >= 6  # the sample file, one per routing type, a configuration, the sources


def test_the_campaign_examples_are_valid():
    specs = [
        model["config"]["meta"]["direct_mail"]
        for block in yaml_blocks(read(DOCS / "campaigns.md"))
        if isinstance(block, list)
        for model in block
        if isinstance(model, dict) and "direct_mail" in model.get("config", {}).get("meta", {})
    ]
    assert specs
    for spec in specs:
        CampaignSpec.model_validate(spec)
