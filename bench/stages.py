"""One benchmark stage per process (`python -m bench.stages STAGE PROJECT OUTPUT`), so that the parent
reads each stage's own peak RSS. Prints a JSON report on stdout, with the seconds of the stage's work
alone (not the process start, imports or the dbt project's parse)."""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path

import duckdb

from directmail.pipeline import CampaignRun, RunOptions, parse_run_time
from directmail.project import load_project

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
    options = RunOptions(parse_run_time(RUN_TIME), dry_run=True, skip_build=skip_build)
    return CampaignRun(load_project(project), CAMPAIGN, options)


def build(project: Path, output: Path) -> dict:
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


def extract(project: Path, output: Path) -> dict:
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
        "write_seconds": seconds - (staged - started),  # stream, pandera, encode, split, write
        "rss_before_mib": baseline,  # the interpreter, dbt and the parsed project, before any row is read
        "rows": run.record.exported,
        "targeted": run.record.targeted,
        "files": len(run.staged),
    }


def floor(project: Path, output: Path) -> dict:
    output.mkdir(parents=True)
    with duckdb.connect(_database(project), read_only=True) as con:
        started = time.perf_counter()
        con.execute(
            f"copy (select {WRITTEN} from main.{CAMPAIGN} order by {SORT} nulls last) "
            f"to '{output / 'floor.csv'}' (header, delimiter ',')"
        )
    return {"seconds": time.perf_counter() - started}


def pandas(project: Path, output: Path) -> dict:
    import pandera.pandas as pa

    output.mkdir(parents=True)
    with duckdb.connect(_database(project), read_only=True) as con:
        started = time.perf_counter()
        frame = con.sql(f"select * from main.{CAMPAIGN}").df()
    required = pa.Check.str_length(min_value=1)
    schema = pa.DataFrameSchema(
        {
            "address_line_1": pa.Column(str, required, nullable=True),
            "postal_code": pa.Column(str, required, nullable=True),
            "city": pa.Column(str, required, nullable=True),
            "country_code": pa.Column(str, pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
        }
    )
    try:  # the built table still holds the rows the runner would exclude: count, as the runner does
        schema.validate(frame, lazy=True)
        failures = 0
    except pa.errors.SchemaErrors as exc:
        failures = len(exc.failure_cases)
    frame = frame.sort_values(SORT.split(", "), na_position="last", kind="stable")
    frame[WRITTEN.split(", ")].to_csv(output / "pandas.csv", index=False)
    return {"seconds": time.perf_counter() - started, "rows": len(frame), "failures": failures}


if __name__ == "__main__":
    stage, project, output = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    report = {"build": build, "extract": extract, "floor": floor, "pandas": pandas}[stage](project, output)
    print(json.dumps(report))
