"""Start-up: each `directmail` command as a whole process, against its target.

    uv run python -m bench.startup [--profiles 2000] [--repeat 5]

A sample project of N profiles is generated and both sample campaigns are run (as `make demo` does), so
the history has runs and the parse cache is fresh. Then each command is timed as a whole process, from
exec to exit: one warm-up (through tests/import_probe.py, which also records whether dbt was imported),
then the median of `--repeat` runs. The section "Start-up" of bench/RESULTS.md is replaced with the
result (the other sections are kept); `make bench` runs it after bench.extract.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import results as results_file
from tests.conftest import copy_sample_project

HEADING = "## Start-up"
PROBE = Path(__file__).resolve().parent.parent / "tests" / "import_probe.py"
CAMPAIGNS_YML = "models/campaigns/_campaigns__models.yml"


@dataclass
class Case:
    """One command line, with what to do to the project before each run of it and after them all."""

    label: str
    args: list[str]
    target_seconds: float | None = None  # None: measured, no target
    dbt_expected: bool | None = None  # False: must not import dbt; None: no rule
    before_each: Callable[[Path], None] = lambda project: None
    setup: Callable[[Path], Callable[[], None]] | None = None  # returns the undo


def _edit(relative: str, old: str, new: str) -> Callable[[Path], Callable[[], None]]:
    def setup(project: Path) -> Callable[[], None]:
        path = project / relative
        original = path.read_bytes()
        text = original.decode()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

        def undo() -> None:
            path.write_bytes(original)

        return undo

    return setup


def _drop_cache(project: Path) -> None:
    shutil.rmtree(project / ".directmail" / "cache", ignore_errors=True)


CASES = [
    Case("`directmail --help`", ["--help"]),
    Case("`directmail list`", ["list"], 1.0, False),
    Case("`directmail report`", ["report"], 1.0, False),
    Case("`directmail validate` (no finding: compiles the campaigns)", ["validate"]),
    Case(
        "`directmail validate`, a typo in direct_mail.yml",
        ["validate"],
        1.0,
        False,
        setup=_edit("direct_mail.yml", "format: csv", "format: cvs"),
    ),
    Case(
        "`directmail validate`, a YAML syntax error in a models YAML",
        ["validate"],
        1.0,
        False,
        setup=_edit(
            CAMPAIGNS_YML, "          status: active\n", "          status: active\n         oops: [\n"
        ),
    ),
    Case(
        "`directmail run winter_catalog --skip-build --dry-run` (whole run)",
        ["run", "winter_catalog", "--skip-build", "--dry-run", "--run-time", "2026-11-23T06:00:00Z"],
        None,
        False,
    ),
    Case(
        "`directmail list`, parse cache dropped (dbt parses)", ["list"], None, True, before_each=_drop_cache
    ),
]


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    drop = ("DIRECTMAIL_WAREHOUSE", "PREFECT_API_URL", "IMPORT_PROBE_OUTPUT")
    return {k: v for k, v in os.environ.items() if k not in drop} | (extra or {})


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds from exec to exit, and the CPU seconds (user + system) the process itself used: on a
    machine shared with other work the second tells what the command costs, the first what it took."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, _, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def measure(case: Case, project: Path, executable: list[str], repeat: int) -> dict:
    """One warm-up through the import probe (did it load dbt?), then `repeat` timed runs."""
    undo = case.setup(project) if case.setup else None
    try:
        modules = project.parent / "modules.json"
        modules.unlink(missing_ok=True)
        case.before_each(project)
        probe_env = _environment({"IMPORT_PROBE_OUTPUT": str(modules)})
        args = ["--project-dir", str(project), *case.args]
        subprocess.run(
            [sys.executable, str(PROBE), *args],
            cwd=project.parent,
            env=probe_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        imported = set(json.loads(modules.read_text())) if modules.exists() else set()
        seconds, cpu = [], []
        for _ in range(repeat):
            case.before_each(project)
            wall, used = _timed([*executable, *args], project.parent, _environment())
            seconds.append(wall)
            cpu.append(used)
    finally:
        if undo:
            undo()
    return {
        "label": case.label,
        "median": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "cpu": statistics.median(cpu),
        "dbt": "dbt" in imported,
        "target": case.target_seconds,
        "dbt_expected": case.dbt_expected,
    }


def prepare(work: Path, profiles: int, executable: list[str]) -> Path:
    """The sample project with both campaigns run once (history rows, built tables, a fresh cache)."""
    project = copy_sample_project(work / "project", profiles)
    for campaign in ("winter_catalog", "lapsed_postcard"):
        command = [*executable, "--project-dir", str(project), "run", campaign]
        subprocess.run(command, cwd=work, env=_environment(), check=True, capture_output=True)
    return project


def section(results: list[dict], profiles: int, repeat: int) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (
        f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [
        HEADING,
        "",
        f"{stamp} on {machine}, load average {load}; `python -m bench.startup --profiles {profiles}`.",
        "",
        f"Each command as a whole process on a {profiles:,}-profile sample project after both campaigns ran, "
        f"median of {repeat} after one warm-up, warm OS cache. Seconds are wall time, exec to exit; CPU is "
        "the process's own (user + system): what the command costs, whatever else the machine runs.",
        "",
        "| command | median s | min s | max s | CPU s (user + system) | dbt imported |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['median']:.2f} | {r['min']:.2f} | {r['max']:.2f} | {r['cpu']:.2f} | "
            f"{'yes' if r['dbt'] else 'no'} |"
        )
    lines += ["", "Targets:"]
    for r in results:
        if r["target"] is not None:
            met = r["median"] < r["target"]
            lines.append(
                f"- {r['label']} < {r['target']:.0f} s: {r['median']:.2f} s ({'met' if met else 'missed'})"
            )
    fresh = [r for r in results if r["dbt_expected"] is False]
    loaded = [r["label"] for r in fresh if r["dbt"]]
    verdict = "met" if not loaded else "missed: " + "; ".join(loaded)
    lines.append(
        f"- dbt not imported by a read command with a fresh parse cache ({len(fresh)} commands): {verdict}"
    )
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace this section of bench/RESULTS.md, keeping the others (bench/results.py)."""
    results_file.write_section(HEADING, text)


def run(profiles: int, repeat: int, executable: list[str] | None = None) -> list[dict]:
    executable = executable or [str(Path(sys.executable).parent / "directmail")]
    with tempfile.TemporaryDirectory(prefix="dm-bench-startup-") as folder:
        project = prepare(Path(folder), profiles, executable)
        return [measure(case, project, executable, repeat) for case in CASES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=2000, help="profiles in the sample project")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command (median)")
    args = parser.parse_args()
    print(f"start-up on a {args.profiles:,}-profile sample …", flush=True)
    text = section(run(args.profiles, args.repeat), args.profiles, args.repeat)
    print(text)
    write_section(text)


if __name__ == "__main__":
    main()
