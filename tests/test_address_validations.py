"""The runner's address validation into direct_mail.address_validations, on real DuckDB files: only new
or changed keys (and an older validator's) are validated, one transaction, a fresh warehouse, bounded
memory, and a collected model without the columns refused before any write."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest

from directmail.address_validations import validate_addresses
from directmail.addresses import VALIDATOR_VERSION, validate
from directmail.errors import ConfigError
from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse

TABLE = "direct_mail.address_validations"


def collect(warehouse: DuckDBWarehouse, rows: int, start: int = 0) -> None:
    """`rows` distinct French addresses (every 10th one with a cut-short postal code) in main.collected."""
    warehouse.execute(
        "create table if not exists collected (address_key varchar, address_line_1 varchar, "
        "address_line_2 varchar, postal_code varchar, city varchar, region varchar, country_code varchar)"
    )
    warehouse.execute(
        "insert into collected select md5(cast(i as varchar)), cast(i as varchar) || ' rue de la Paix', "
        "null, case when i % 10 = 0 then '7500' else '75002' end, 'Paris', null, 'FR' "
        f"from range({start}, {start + rows}) as t(i)"
    )


def count(warehouse: DuckDBWarehouse, where: str = "true") -> int:
    return warehouse.query(f"select count(*) as n from {TABLE} where {where}")["n"][0].as_py()


@pytest.fixture
def warehouse(tmp_path: Path):
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb") as opened:
        yield opened


def test_a_fresh_warehouse_gets_the_table_and_every_result(warehouse):
    collect(warehouse, 1_000)
    report = validate_addresses(warehouse, "collected", "collected", batch_size=300)
    assert (report.validated, report.replaced) == (1_000, 0)
    assert count(warehouse) == 1_000
    assert count(warehouse, "not is_valid_address and address_errors = 'postal_code:invalid'") == 100
    row = warehouse.query(f"select * from {TABLE} where address_key = md5('1')").to_pylist()[0]
    assert row["normalized_city"] == "PARIS" and row["household_key"] is not None
    assert row["validator_version"] == VALIDATOR_VERSION


def test_only_new_changed_and_older_validator_keys_are_validated_again(warehouse):
    collect(warehouse, 1_000)
    validate_addresses(warehouse, "collected", "collected")
    assert validate_addresses(warehouse, "collected", "collected").validated == 0

    collect(warehouse, 5, start=1_000)  # new addresses
    warehouse.execute(
        f"update {TABLE} set validator_version = 'older' where address_key in (md5('1'), md5('2'))"
    )
    report = validate_addresses(warehouse, "collected", "collected")
    assert (report.validated, report.replaced) == (7, 2)
    assert "7 address key(s) validated, 2 earlier result(s) removed" in report.describe()
    assert count(warehouse) == 1_005 and count(warehouse, f"validator_version <> '{VALIDATOR_VERSION}'") == 0
    latest = warehouse.query(f"select max(validated_at) as t from {TABLE}")["t"][0].as_py()
    assert count(warehouse, f"validated_at = '{latest}'") == 7
    assert count(warehouse, f"validated_at < '{latest}'") == 998  # the others kept their first result


def test_all_replaces_every_row(warehouse):
    collect(warehouse, 500)
    validate_addresses(warehouse, "collected", "collected")
    warehouse.execute("delete from collected where address_key = md5('3')")
    report = validate_addresses(warehouse, "collected", "collected", everything=True)
    assert (report.validated, report.replaced) == (499, 500)
    assert count(warehouse) == 499


def test_a_failure_midway_leaves_the_table_as_it_was(warehouse):
    collect(warehouse, 1_000)
    validate_addresses(warehouse, "collected", "collected")
    warehouse.execute(f"update {TABLE} set validator_version = 'older' where address_key = md5('5')")
    collect(warehouse, 1_000, start=1_000)

    def interrupted(message: str) -> None:
        if message.endswith("600 done"):  # the third batch of 200
            raise RuntimeError("killed")

    with pytest.raises(Exception, match="killed"):
        validate_addresses(warehouse, "collected", "collected", batch_size=200, progress=interrupted)
    assert count(warehouse) == 1_000  # nothing of the 1,000 new keys, the older row not deleted
    assert count(warehouse, "validator_version = 'older'") == 1
    assert validate_addresses(warehouse, "collected", "collected").validated == 1_001


def test_memory_stays_that_of_one_batch(warehouse):
    """Python and Arrow memory during a 50,000-key validation is bounded by the batch, not the keys
    (validated in one batch, the Python peak is about four times the result's Arrow size)."""
    collect(warehouse, 50_000)
    arrow_peak = [0]

    def sample(message: str) -> None:  # between batches, while the stream is being inserted
        arrow_peak[0] = max(arrow_peak[0], pa.total_allocated_bytes())

    validate("1 rue de la Paix", None, "75002", "Paris", None, "FR")  # the rules' data, read once
    tracemalloc.start()
    try:
        report = validate_addresses(warehouse, "collected", "collected", batch_size=1_000, progress=sample)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.validated == 50_000 and count(warehouse) == 50_000
    # The whole result as Arrow is ~8 MB and its Python values several times that; one batch is 1/50.
    whole = warehouse.query(f"select * from {TABLE}").nbytes
    assert whole > 5_000_000
    assert python_peak < whole / 4, (python_peak, whole)
    assert arrow_peak[0] < whole / 4, (arrow_peak[0], whole)


def test_a_model_without_the_address_columns_is_refused_before_any_write(warehouse):
    warehouse.execute("create table collected as select 'k' as address_key, 'FR' as country_code")
    with pytest.raises(ConfigError) as refused:
        validate_addresses(warehouse, "collected", "int_addresses_collected")
    assert str(refused.value.findings[0]) == (
        "error: direct_mail.yml: addresses.validate: model 'int_addresses_collected' lacks the column(s) "
        "address_line_1, address_line_2, postal_code, city, region (needs address_key, address_line_1, "
        "address_line_2, postal_code, city, region, country_code)"
    )
    assert count(warehouse) == 0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  validate: int_addresses_collected\n",
            "",
            "error: direct_mail.yml: addresses.validate: not set: name the model of addresses to validate "
            "(e.g. int_addresses_collected)",
        ),
        (
            "validate: int_addresses_collected",
            "validate: int_addresses_gathered",
            "error: direct_mail.yml: addresses.validate: 'int_addresses_gathered' is not a model of the dbt "
            "project (the addresses to validate)",
        ),
    ],
)
def test_the_command_names_a_missing_or_unknown_model(tmp_path, old, new, expected):
    from tests.conftest import copy_project_files
    from tests.test_sample_project import cli

    project = copy_project_files(tmp_path / "project")
    config = project / "direct_mail.yml"
    config.write_text(config.read_text().replace(old, new))
    result = cli(project, "addresses", "validate")
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == expected
