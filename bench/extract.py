"""The extract at scale against the floor (DuckDB's own COPY) and two peers (pandas, polars) doing the same
work, and what a person waits for (`directmail run`, start to exit, against the floor as a process), all
measured in the same run on the same machine and compared as ratios.

    uv run python -m bench.extract [--sizes 100000,1000000] [--sftp]

For each size N: a sample warehouse of N profiles; `dbt build` of winter_catalog (timed); then, each in a
child process of its own so that its peak RSS is its own:
- extract: directmail's extract and write steps (exclusions, dedupe and order in the warehouse, the value
  checks, contract-3 bytes, split parts) from the built table to files on disk;
- floor: `COPY (select <written columns> from winter_catalog order by <sort keys, identity>) TO` a CSV,
  with no exclusions, validation, split or notes;
- pandas, polars: the same file made with each library (bench/peers.py: consent, suppression, address,
  frequency-cap joins, dedupe, holdout, sort, split, notes, CSV); each must write directmail's exported
  row count, and the table says whether its files are byte for byte directmail's;
- run process: `directmail run winter_catalog --skip-build --run-time …` in a fresh copy of the built
  project, delivering to the sample's landing folder, timed from start to exit;
- floor process: `python -c` importing duckdb, opening the file and running the floor's COPY, start to
  exit.
With `--sftp`, the 1 M (or the largest) extract is also uploaded with directmail's SFTP and OpenSSH's
`sftp` to a local sshd. Results are printed and written to bench/RESULTS.md with the date and machine,
each target marked met or missed at the largest size measured (its other sections, "Start-up" written by
bench/startup.py and "Day 2" by bench/day2.py, are kept).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from bench import results as results_file
from tests.conftest import copy_project_files

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CAMPAIGN = "winter_catalog"
RUN_TIME = "2026-11-23T06:00:00Z"


def _child(stage: str, project: Path, output: Path, rows: int | None = None) -> dict:
    """Run one stage in a child process; its wall time and peak RSS (KiB) come back with its report."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "bench.stages", stage, str(project), str(output)]
    process = subprocess.Popen([*command, *([str(rows)] if rows is not None else [])], stdout=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process_seconds = time.perf_counter() - started
    assert process.stdout is not None  # a pipe
    report = json.loads(process.stdout.read() or b"{}")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"stage {stage} failed for {project}")
    return {"process_seconds": process_seconds, "peak_rss_mib": usage.ru_maxrss / 1024, **report}


def timed_process(command: list[str], cwd: Path, what: str, env: dict[str, str] | None = None) -> dict:
    """A whole process, start to exit, as a person waits for it; its peak RSS from wait4."""
    env = {
        k: v
        for k, v in (os.environ if env is None else env).items()
        if k not in ("PREFECT_API_URL", "DIRECTMAIL_WAREHOUSE")
    }
    log = cwd / f"{what}.log"
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{what} failed in {cwd}:\n{log.read_text(errors='replace')[-2000:]}")
    return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def run_process(project: Path, copy: Path, exported: int) -> dict:
    """`directmail run` in a fresh copy of the built project (never "nothing to do"), delivering to the
    sample's landing folder; the run must record directmail's exported count as delivered.

    dbt's parse is cached first (an untimed `directmail list` in the copy), as it is for every command
    after the first in a project: what is timed is a scheduled run's wait, not a project's first command.
    """
    from bench.stages import _database

    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".directmail", "landing", "*.tmp"))
    directmail = str(Path(sys.executable).with_name("directmail"))
    subprocess.run([directmail, "list"], cwd=copy, check=True, capture_output=True)
    command = [directmail, "run", CAMPAIGN, "--skip-build", "--run-time", RUN_TIME]
    result = timed_process(command, copy, "directmail-run")
    with duckdb.connect(_database(copy), read_only=True) as con:
        recorded = con.execute(
            "select status, exported from direct_mail.runs where run_id = ?", [f"{CAMPAIGN}@{RUN_TIME}"]
        ).fetchone()
    if recorded is None:
        raise RuntimeError(f"directmail run in {copy}: no run recorded")
    status, rows = recorded
    if (status, rows) != ("delivered", exported):
        raise RuntimeError(f"directmail run in {copy}: {status}, {rows:,} rows (expected {exported:,})")
    shutil.rmtree(copy)
    return result


def floor_process(project: Path, output: Path) -> dict:
    """The floor as a process of its own: import duckdb, open the file, COPY, exit."""
    from bench.stages import _database, floor_sql

    output.mkdir(parents=True)
    code = (
        "import duckdb; "
        f"duckdb.connect({_database(project)!r}, read_only=True).execute({floor_sql(project, output)!r})"
    )
    return timed_process([sys.executable, "-c", code], output, "floor-process")


def _same_files(expected: Path, actual: Path) -> bool:
    """Whether two folders hold the same CSV files (names and bytes)."""

    def digests(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*.csv")
        }

    return digests(expected) == digests(actual)


def bench_project(destination: Path, size: int) -> Path:
    """A copy of the sample project on a warehouse of `size` profiles, split as mail houses take it.

    The warehouse is generated by a child process: a process started later by this one would otherwise
    report this one's peak RSS as its own (Linux carries the parent's high-water mark across fork and exec
    into the child's ru_maxrss), and generating 10 M profiles takes gigabytes."""
    copy_project_files(destination)
    database = destination / "warehouse" / "directmail.duckdb"
    generate = [sys.executable, "-m", "sampledata.generate", "--database", str(database)]
    subprocess.run([*generate, "--profiles", str(size)], check=True, stdout=subprocess.DEVNULL)
    return split_as_mail_houses_take(destination)


def split_as_mail_houses_take(project: Path) -> Path:
    """The sample splits at 500 rows; mail houses take up to 200,000."""
    config = project / "direct_mail.yml"
    config.write_text(config.read_text().replace("split_threshold: 500", "split_threshold: 200000"))
    return project


def measure(size: int, work: Path) -> dict:
    project = bench_project(work / f"project-{size}", size)
    result: dict[str, Any] = {"profiles": size, "build": _child("build", project, work)}
    result["extract"] = _child("extract", project, work / f"extract-{size}")
    exported = result["extract"]["rows"]
    result["floor"] = _child("floor", project, work / f"floor-{size}")
    for peer in ("pandas", "polars"):
        result[peer] = _child(peer, project, work / f"{peer}-{size}", exported)
        result[peer]["same_bytes"] = _same_files(work / f"extract-{size}", work / f"{peer}-{size}")
    result["run_process"] = run_process(project, work / f"run-{size}", exported)
    result["floor_process"] = floor_process(project, work / f"floor-process-{size}")
    return result


def sftp(extract_dir: Path, profiles: int) -> dict[str, float]:
    from bench.upload import compare_sftp

    source = max((p for p in extract_dir.rglob("*.csv") if p.is_file()), key=lambda p: p.stat().st_size)
    megabytes = source.stat().st_size / 1e6
    seconds = compare_sftp(source, extract_dir, repeat=3)
    return {
        "profiles": profiles,
        "megabytes": megabytes,
        "directmail_mb_s": megabytes / seconds["directmail sftp (paramiko)"],
        "openssh_mb_s": megabytes / seconds["OpenSSH sftp"],
    }


def table(results: list[dict], upload: dict | None) -> str:
    lines = [
        "The work alone, in process (seconds from the built table to part files):",
        "",
        "| profiles | targeted | written | dbt build s | extract s (warehouse + write) | extract RSS MiB "
        "| floor s | pandas s | pandas RSS MiB | polars s | polars RSS MiB | extract / floor "
        "| pandas / extract | polars / extract | peers' files = directmail's |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in results:
        e, floor, pandas, polars = r["extract"], r["floor"]["seconds"], r["pandas"], r["polars"]
        same = "yes" if pandas["same_bytes"] and polars["same_bytes"] else "no"
        lines.append(
            f"| {r['profiles']:,} | {e['targeted']:,} | {e['rows']:,} | {r['build']['seconds']:.1f} | "
            f"{e['seconds']:.2f} ({e['warehouse_seconds']:.2f} + {e['write_seconds']:.2f}) | "
            f"{e['peak_rss_mib']:,.0f} | {floor:.2f} | "
            f"{pandas['seconds']:.2f} | {pandas['peak_rss_mib']:,.0f} | "
            f"{polars['seconds']:.2f} | {polars['peak_rss_mib']:,.0f} | {e['seconds'] / floor:.2f} | "
            f"{pandas['seconds'] / e['seconds']:.1f} | {polars['seconds'] / e['seconds']:.1f} | {same} |"
        )
    lines += [
        "",
        "Whole processes, start to exit (what a person waits for):",
        "",
        "| profiles | `directmail run` s | run RSS MiB | floor process s | run / floor process |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        run, floor = r["run_process"], r["floor_process"]
        lines.append(
            f"| {r['profiles']:,} | {run['seconds']:.2f} | {run['peak_rss_mib']:,.0f} | "
            f"{floor['seconds']:.2f} | {run['seconds'] / floor['seconds']:.2f} |"
        )
    lines += ["", "RSS: peak resident memory of the stage's own process, interpreter and libraries included."]
    if upload:
        lines += [
            "",
            f"SFTP upload of a {upload['megabytes']:.0f} MB part of the {upload['profiles']:,}-profile "
            f"extract: directmail {upload['directmail_mb_s']:.0f} MB/s, "
            f"OpenSSH sftp {upload['openssh_mb_s']:.0f} MB/s, "
            f"ratio {upload['directmail_mb_s'] / upload['openssh_mb_s']:.2f}.",
        ]
    return "\n".join([*lines, "", *targets(results, upload)])


RSS_TARGET_PROFILES = 10_000_000


def targets(results: list[dict], upload: dict | None) -> list[str]:
    """Each target against this run's numbers at the largest size measured (peak RSS only when the
    10,000,000-profile size was measured)."""

    def line(name: str, value: str, met: bool, size: int | None = None) -> str:
        where = f" at {size:,} profiles" if size is not None else ""
        return f"- {name}{where}: {value} ({'met' if met else 'missed'})"

    top = max(results, key=lambda r: r["profiles"])
    size, extract = top["profiles"], top["extract"]["seconds"]
    run_floor = top["run_process"]["seconds"] / top["floor_process"]["seconds"]
    extract_floor = extract / top["floor"]["seconds"]
    pandas = top["pandas"]["seconds"] / extract
    polars = top["polars"]["seconds"] / extract
    out = [
        "Targets:",
        line("run process ≤ 1.5 x floor process", f"{run_floor:.2f} x", run_floor <= 1.5, size),
        line("extract ≤ 1.25 x floor", f"{extract_floor:.2f} x", extract_floor <= 1.25, size),
        line("extract ≥ 5 x faster than pandas", f"{pandas:.1f} x", pandas >= 5, size),
        line("extract at least as fast as polars", f"{polars:.2f} x", polars >= 1, size),
    ]
    ten = [r for r in results if r["profiles"] == RSS_TARGET_PROFILES]
    if ten:
        rss = max(ten[0]["extract"]["peak_rss_mib"], ten[0]["run_process"]["peak_rss_mib"])
        out.append(
            line(
                "peak RSS (extract, run process) < 1 GiB", f"{rss:,.0f} MiB", rss < 1024, RSS_TARGET_PROFILES
            )
        )
    if upload:
        ratio = upload["directmail_mb_s"] / upload["openssh_mb_s"]
        out.append(line("SFTP ≥ 0.5 x OpenSSH sftp", f"{ratio:.2f} x", ratio >= 0.5))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated profile counts")
    parser.add_argument("--sftp", action="store_true", help="also compare SFTP uploads of the extract")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    machine = (
        f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="dm-bench-extract-") as folder:
        work = Path(folder)
        results = []
        for size in sizes:
            print(f"{size:,} profiles …", flush=True)
            results.append(measure(size, work))
        sftp_size = 1_000_000 if 1_000_000 in sizes else sizes[-1]  # the 1 M extract when measured
        upload = sftp(work / f"extract-{sftp_size}", sftp_size) if args.sftp else None
        (work / "results.json").write_text(json.dumps(results))
    text = table(results, upload)
    print(text)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.write_text(
        f"# Benchmark results\n\n{stamp} on {machine}; "
        f"`python -m bench.extract --sizes {args.sizes}`.\n\n{text}\n{results_file.saved_sections()}"
    )


if __name__ == "__main__":
    main()
