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
`sftp` to a local sshd. Results are printed and written to bench/RESULTS.md with the date and machine.
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


def sftp(extract_dir: Path) -> dict[str, float]:
    from bench.upload import compare_sftp

    source = max((p for p in extract_dir.rglob("*.csv") if p.is_file()), key=lambda p: p.stat().st_size)
    megabytes = source.stat().st_size / 1e6
    seconds = compare_sftp(source, extract_dir, repeat=3)
    return {
        "megabytes": megabytes,
        "directmail_mb_s": megabytes / seconds["directmail sftp (paramiko)"],
        "openssh_mb_s": megabytes / seconds["OpenSSH sftp"],
    }


def table(results: list[dict], upload: dict | None) -> str:
    lines = [
        "| profiles | dbt build s | extract s | extract peak RSS MiB | floor s | pandas s "
        "| pandas peak RSS MiB | extract / floor | pandas / extract |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        extract, floor, pandas = r["extract"]["seconds"], r["floor"]["seconds"], r["pandas"]["seconds"]
        lines.append(
            f"| {r['profiles']:,} | {r['build']['seconds']:.1f} | {extract:.2f} | "
            f"{r['extract']['peak_rss_mib']:,.0f} | {floor:.2f} | {pandas:.2f} | "
            f"{r['pandas']['peak_rss_mib']:,.0f} | {extract / floor:.2f} | {pandas / extract:.1f} |"
        )
    rows = ", ".join(f"{r['profiles']:,}: {r['extract'].get('rows', 0):,} rows" for r in results)
    lines += ["", f"Rows written by the extract: {rows}."]
    if upload:
        lines += [
            "",
            f"SFTP upload of a {upload['megabytes']:.0f} MB part: "
            f"directmail {upload['directmail_mb_s']:.0f} MB/s, "
            f"OpenSSH sftp {upload['openssh_mb_s']:.0f} MB/s, ratio "
            f"{upload['directmail_mb_s'] / upload['openssh_mb_s']:.2f}.",
        ]
    return "\n".join(lines)


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
        upload = sftp(work / f"extract-{sizes[-1]}") if args.sftp else None
        (work / "results.json").write_text(json.dumps(results))
    text = table(results, upload)
    print(text)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.write_text(
        f"# Benchmark results\n\n{stamp} on {machine}; "
        f"`python -m bench.extract --sizes {args.sizes}`.\n\n{text}\n"
    )


if __name__ == "__main__":
    main()
