"""One benchmark stage per process (`python -m bench.stages STAGE PROJECT OUTPUT [ROWS]`), so that the
parent reads each stage's own peak RSS. Prints a JSON report on stdout, with the seconds of the stage's
work alone (not the process start, imports or the dbt project's parse). directmail is imported only by
the stages that run it, so the floor's and the peers' RSS hold none of it. A peer stage given ROWS
(directmail's exported count) fails unless it wrote exactly as many."""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import yaml  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from directmail.pipeline import CampaignRun

CAMPAIGN = "winter_catalog"
RUN_TIME = "2026-11-23T06:00:00Z"
SORT = "country_code, postal_code, last_name, profile_id"
WRITTEN = (
    "first_name, last_name, address_line_1, address_line_2, postal_code, city, region, country_code, "
    "loyalty_tier, offer_code, offer_name, offer_description"
)


def _database(project: Path) -> str:
    return str(project / "warehouse" / "directmail.duckdb")


def _run(project: Path, skip_build: bool) -> CampaignRun:
    from directmail.pipeline import CampaignRun, RunOptions, parse_run_time
    from directmail.project import load_project

    options = RunOptions(parse_run_time(RUN_TIME), dry_run=True, skip_build=skip_build)
    return CampaignRun(load_project(project), CAMPAIGN, options)


def build(project: Path, output: Path, rows: int | None = None) -> dict:
    run = _run(project, skip_build=False)
    try:
        run.check()
        started = time.perf_counter()
        run.build()
        seconds = time.perf_counter() - started
    finally:
        # Closing checkpoints the file. A real run extracts in the same process; here the next stage is
        # another process, which would otherwise replay the build's write-ahead log into memory first.
        run.close()
    return {"seconds": seconds}


def extract(project: Path, output: Path, rows: int | None = None) -> dict:
    """Everything from the built table to part files on disk: the runner's extract and write steps."""
    run = _run(project, skip_build=True)
    try:
        run.check()
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        run.extract()
        staged = time.perf_counter()
        run.write()
        seconds = time.perf_counter() - started
    finally:
        run.close()
    shutil.move(run.staging_dir, output)
    return {
        "seconds": seconds,
        "warehouse_seconds": staged - started,  # exclusions, dedupe and order into the staging table
        "write_seconds": seconds - (staged - started),  # value checks, stream, encode, split, write
        "rss_before_mib": baseline,  # the interpreter, dbt and the parsed project, before any row is read
        "rows": run.record.exported,
        "targeted": run.record.targeted,
        "files": len(run.staged),
    }


def floor_sql(project: Path, output: Path) -> str:
    """The floor: the written columns in file order, straight out with DuckDB's COPY."""
    return (
        f"copy (select {WRITTEN} from main.{CAMPAIGN} order by {SORT} nulls last) "
        f"to '{output / 'floor.csv'}' (header, delimiter ',')"
    )


def floor(project: Path, output: Path, rows: int | None = None) -> dict:
    output.mkdir(parents=True)
    with duckdb.connect(_database(project), read_only=True) as con:
        started = time.perf_counter()
        con.execute(floor_sql(project, output))
    return {"seconds": time.perf_counter() - started}


def _peer(run, project: Path, output: Path, rows: int | None) -> dict:
    """A peer (bench/peers.py) from the built table to part files, with the project's split_threshold."""
    from bench.peers import Job

    config = yaml.safe_load((project / "direct_mail.yml").read_text(encoding="utf-8"))
    job = Job(
        Path(_database(project)), config["configurations"]["mailhouse_csv"]["split_threshold"], RUN_TIME
    )
    started = time.perf_counter()
    written = run(job, output)
    seconds = time.perf_counter() - started
    if rows is not None and written != rows:
        raise SystemExit(f"{run.__name__} wrote {written:,} rows; directmail exported {rows:,}")
    return {"seconds": seconds, "rows": written}


def pandas(project: Path, output: Path, rows: int | None = None) -> dict:
    from bench.peers import run_pandas

    return _peer(run_pandas, project, output, rows)


def polars(project: Path, output: Path, rows: int | None = None) -> dict:
    from bench.peers import run_polars

    return _peer(run_polars, project, output, rows)


if __name__ == "__main__":
    stage, project, output = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else None
    stages = {"build": build, "extract": extract, "floor": floor, "pandas": pandas, "polars": polars}
    report = stages[stage](project, output, rows)
    print(json.dumps(report))
