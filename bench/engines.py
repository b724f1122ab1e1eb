"""The same campaign run on each engine of profiles.yml, against that engine's own floor, as whole
processes (what a person waits for), measured in the same run:

    uv run python -m bench.engines [--profiles 1000000] [--engines postgres,spark:100000]

An engine may carry its own profile count (`spark:100000`): a JVM-bound local Spark on two cores takes
minutes per 100,000 profiles to build, so it is measured smaller than the others.

For each engine: the sample CRM of N profiles written to it (`sampledata.generate --target`), the seeds
loaded, then, each a process of its own and timed start to exit with its peak RSS:
- build: `directmail --target T run winter_catalog --dry-run` (address validation, `dbt build`, extract
  and write, no delivery);
- run: `directmail --target T run winter_catalog --skip-build`, delivering to the landing folder; the run
  must be recorded `delivered` with every row the floor's filter keeps; its steps' seconds come from
  `direct_mail.runs.step_seconds`;
- floor: the engine writing the built campaign's written columns in file order to CSV itself, with no
  exclusions, validation, split or notes. PostgreSQL: `psql -c "copy (select … order by … collate "C")
  to stdout"` into a file (code-point order, as the runner's). Spark: a pyspark process writing
  `spark.table(…).orderBy(…)` as CSV, JVM start included as the run's is.
PostgreSQL is a throwaway server on 127.0.0.1 (tests/servers.py: fsync off, as for the tests); Spark is
`local[*]` in the run's own process (the `spark` extra). The section "Engines" of bench/RESULTS.md is
replaced with the table.
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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench import results
from bench.extract import split_as_mail_houses_take, timed_process
from bench.stages import CAMPAIGN, RUN_TIME, SORT, WRITTEN
from tests.conftest import copy_project_files

HEADING = "## Engines"
DRY_RUN_TIME = "2026-11-22T06:00:00Z"
BIN = Path(sys.executable).parent


def _project(work: Path, engine: str) -> Path:
    return split_as_mail_houses_take(copy_project_files(work / f"project-{engine}"))


def _directmail(engine: str, *args: str) -> list[str]:
    return [str(BIN / "directmail"), "--target", engine, *args]


def _measure(engine: str, profiles: int, project: Path, env: dict[str, str], floor: list[str]) -> dict:
    """Sample, seeds, build, run and floor on one engine, as processes of their own."""
    generate = [sys.executable, "-m", "sampledata.generate", "--target", engine, "--profiles"]
    sample = timed_process([*generate, str(profiles)], project, "sample", env)
    seeds = [str(BIN / "dbt"), "seed", "--target", engine, "--profiles-dir", ".", "--quiet"]
    subprocess.run(seeds, cwd=project, env=env, check=True, capture_output=True)
    dry_run = _directmail(engine, "run", CAMPAIGN, "--dry-run", "--run-time", DRY_RUN_TIME)
    build = timed_process(dry_run, project, "build", env)
    run = timed_process(
        _directmail(engine, "run", CAMPAIGN, "--skip-build", "--run-time", RUN_TIME), project, "run", env
    )
    floor_result = timed_process(floor, project, "floor", env)
    status, exported, steps = _read_run(engine, project, env)
    if status != "delivered":
        raise RuntimeError(f"{engine}: the run is {status}, not delivered ({project}/run.log)")
    return {
        "engine": engine,
        "profiles": profiles,
        "sample": sample,
        "build": build,
        "run": run,
        "floor": floor_result,
        "exported": exported,
        "steps": steps,
    }


def _read_run(engine: str, project: Path, env: dict[str, str]) -> tuple[str, int, dict]:
    """The run's status, exported rows and step seconds, as `directmail report --json` prints them."""
    report = _directmail(engine, "report", CAMPAIGN, "--json")
    shown = subprocess.run(report, cwd=project, env=env, check=True, capture_output=True)
    run = json.loads(shown.stdout)["run"]
    if run["run_id"] != f"{CAMPAIGN}@{RUN_TIME}":
        raise RuntimeError(f"{engine}: the latest run is {run['run_id']}, not the one timed")
    return run["status"], run["exported"], run["step_seconds"] or {}


@contextmanager
def _postgres() -> Iterator[dict[str, str]]:
    from tests.servers import PostgresServer

    server = PostgresServer()
    try:
        yield {k: v for k, v in os.environ.items() if not k.startswith("PG")} | server.environment
    finally:
        server.stop()


def postgres(work: Path, profiles: int) -> dict:
    project = _project(work, "postgres")
    with _postgres() as env:
        ordered = ", ".join(
            f'{column.strip()} collate "C" nulls last' if column.strip() != "profile_id" else column.strip()
            for column in SORT.split(",")
        )
        query = f"select {WRITTEN} from main.{CAMPAIGN} order by {ordered}"
        copy = f"copy ({query}) to stdout with (format csv, header)"
        output = project / "floor.csv"
        floor = ["bash", "-c", f"psql -X -q -v ON_ERROR_STOP=1 -c '{copy}' > {output}"]
        return _measure("postgres", profiles, project, env, floor)


def spark(work: Path, profiles: int) -> dict:
    project = _project(work, "spark")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"DIRECTMAIL_SPARK_DIR": str(project / "warehouse" / "spark"), "SPARK_LOCAL_IP": "127.0.0.1"})
    ordered = ", ".join(f"{column.strip()} nulls last" for column in SORT.split(","))  # Spark: by code point
    query = f"select {WRITTEN} from main.{CAMPAIGN} order by {ordered}"
    code = (
        "from pathlib import Path; from sampledata.generate import spark_session; "
        f"spark_session(Path('.')).sql({query!r}).write.option('header', True).csv('floor-csv')"
    )
    return _measure("spark", profiles, project, env, [sys.executable, "-c", code])


def table(rows: list[dict]) -> str:
    lines = [
        "| engine | profiles | written | sample s | build s | `directmail run` s | run RSS MiB "
        "| extract + write s | floor process s | run / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        steps = r["steps"]
        work = steps.get("extract", 0.0) + steps.get("write", 0.0)
        lines.append(
            f"| {r['engine']} | {r['profiles']:,} | {r['exported']:,} | {r['sample']['seconds']:.1f} | "
            f"{r['build']['seconds']:.1f} | {r['run']['seconds']:.2f} | {r['run']['peak_rss_mib']:,.0f} | "
            f"{work:.2f} | {r['floor']['seconds']:.2f} | {r['run']['seconds'] / r['floor']['seconds']:.2f} |"
        )
    return "\n".join(lines)


ENGINES = {"postgres": postgres, "spark": spark}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument(
        "--engines",
        default="postgres",
        help=f"comma-separated ENGINE[:PROFILES], engines: {', '.join(ENGINES)}",
    )
    args = parser.parse_args()
    measured = []
    with tempfile.TemporaryDirectory(prefix="dm-bench-engines-") as folder:
        for choice in args.engines.split(","):
            engine, _, count = choice.partition(":")
            profiles = int(count) if count else args.profiles
            print(f"{engine}, {profiles:,} profiles …", flush=True)
            started = time.perf_counter()
            measured.append(ENGINES[engine](Path(folder), profiles))
            print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    machine = f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores"
    machine += f", load average {load} at its end"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            HEADING,
            "",
            f"{stamp} on {machine}; `python -m bench.engines --profiles {args.profiles} "
            f"--engines {args.engines}`.",
            "",
            "Whole processes, start to exit, each with its peak RSS; `extract + write` is the run's own "
            "record of those steps (direct_mail.runs.step_seconds); the floor is the engine writing the "
            "built campaign's rows in file order to CSV itself.",
            "",
            table(measured),
        ]
    )
    print(text)
    results.write_section(HEADING, text + "\n")


if __name__ == "__main__":
    main()
