"""The extract stage at scale, against the floor (DuckDB's own COPY) and a pandas baseline, measured in the
same run on the same machine.

    uv run python -m bench.extract [--sizes 100000,1000000] [--sftp]

For each size N: a sample warehouse of N profiles; `dbt build` of winter_catalog (timed); then, each in a
child process of its own so that its peak RSS is its own:
- extract: directmail's extract and write steps (exclusions, dedupe and order in the warehouse, pandera on
  Arrow batches, contract-3 bytes, split parts) from the built table to files on disk;
- floor: `COPY (select <written columns> from winter_catalog order by <sort keys, identity>) TO` a CSV,
  with no exclusions, validation, split or notes;
- pandas: the table read into pandas, validated with pandera's pandas backend, sorted, `to_csv`.
With `--sftp`, the 1 M (or the largest) extract is also uploaded with directmail's SFTP and OpenSSH's
`sftp` to a local sshd. Results are printed and written to bench/RESULTS.md with the date and machine
(its "Start-up" section, written by bench/startup.py, is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import startup
from tests.conftest import copy_sample_project

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CAMPAIGN = "winter_catalog"
RUN_TIME = "2026-11-23T06:00:00Z"


def _child(stage: str, project: Path, output: Path) -> dict:
    """Run one stage in a child process; its wall time and peak RSS (KiB) come back with its report."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.stages", stage, str(project), str(output)], stdout=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    process_seconds = time.perf_counter() - started
    report = json.loads(process.stdout.read() or b"{}")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"stage {stage} failed for {project}")
    return {"process_seconds": process_seconds, "peak_rss_mib": usage.ru_maxrss / 1024, **report}


def measure(size: int, work: Path) -> dict:
    project = copy_sample_project(work / f"project-{size}", size)
    config = project / "direct_mail.yml"  # the sample splits at 500 rows; mail houses take up to 200,000
    config.write_text(config.read_text().replace("split_threshold: 500", "split_threshold: 200000"))
    result = {"profiles": size, "build": _child("build", project, work)}
    for stage in ("extract", "floor", "pandas"):
        result[stage] = _child(stage, project, work / f"{stage}-{size}")
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
        "| profiles | targeted | written | dbt build s | extract s (warehouse + write) | extract RSS MiB "
        "| floor s | pandas s | pandas RSS MiB | extract / floor | pandas / extract |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        e, floor, pandas = r["extract"], r["floor"]["seconds"], r["pandas"]["seconds"]
        lines.append(
            f"| {r['profiles']:,} | {e['targeted']:,} | {e['rows']:,} | {r['build']['seconds']:.1f} | "
            f"{e['seconds']:.2f} ({e['warehouse_seconds']:.2f} + {e['write_seconds']:.2f}) | "
            f"{e['peak_rss_mib']:,.0f} | {floor:.2f} | {pandas:.2f} | {r['pandas']['peak_rss_mib']:,.0f} | "
            f"{e['seconds'] / floor:.2f} | {pandas / e['seconds']:.1f} |"
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


def targets(results: list[dict], upload: dict | None) -> list[str]:
    """Each target against this run's numbers, at the size the target names (or the nearest measured)."""

    def at(size: int) -> dict:
        return min(results, key=lambda r: abs(r["profiles"] - size))

    def line(name: str, value: str, met: bool, size: int | None = None) -> str:
        where = f" at {size:,} profiles" if size is not None else ""
        return f"- {name}{where}: {value} ({'met' if met else 'missed'})"

    three, ten = at(3_000_000), at(10_000_000)
    extract_floor = three["extract"]["seconds"] / three["floor"]["seconds"]
    rss = ten["extract"]["peak_rss_mib"]
    slowest_pandas = min(r["pandas"]["seconds"] / r["extract"]["seconds"] for r in results)
    out = [
        "Targets:",
        line("extract ≤ 1.5 x floor", f"{extract_floor:.2f} x", extract_floor <= 1.5, three["profiles"]),
        line("peak RSS < 1.5 GiB", f"{rss:,.0f} MiB", rss < 1536, ten["profiles"]),
        line("≥ 10 x faster than pandas", f"{slowest_pandas:.1f} x at worst", slowest_pandas >= 10),
    ]
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
        f"`python -m bench.extract --sizes {args.sizes}`.\n\n{text}\n{startup.saved_section()}"
    )


if __name__ == "__main__":
    main()
