"""The two peers of directmail's extract and write steps: the same campaign file made with pandas and with
polars, as a competent engineer would write each (the tables read once, vectorized joins and filters, no
loop over rows), so that the benchmark compares directmail with the usual ways of doing the same work.

Both do what the runner does for the sample's `winter_catalog` from its built table (directmail/extract.py
and directmail/rules.py): drop the profiles that refused postal consent for the marketing action (a
consent value of 'n'), the suppressed ones (by profile, and by household key through the addresses
source), those without a valid address (no row in the addresses source, or errors), those with
`cap_count` pieces sent in the `cap_days` before the run (other runs' pieces, holdout excluded; read from
`direct_mail.sends`), then remove identical written rows (keeping the first in file order; a copy
capped excludes its group, as in the runner), hold out `holdout_percent` % by the runner's own rule (the
first 8 hex digits of md5('<campaign>:<identity>') mod 10,000), sort by the sort keys then the identity
(code-point order, nulls last) and write parts of `split_threshold` records: header note, header row,
the rows, the proof addresses (seed rows count in the threshold), footer note.

The holdout bucket is the one expression computed in the query that reads the campaign table: neither
pandas nor polars has md5, and hashing each identity in Python would be the row loop the peers avoid.
Neither imports directmail: a script of its own would not, and its peak RSS is then its own.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class Job:
    """The campaign's settings the peers need (models/campaigns/_campaigns__models.yml, direct_mail.yml)."""

    database: Path
    split_threshold: int
    run_time: str = "2026-11-23T06:00:00Z"
    campaign: str = "winter_catalog"
    identity: str = "profile_id"
    labels: tuple[str, ...] = (
        "first_name",
        "last_name",
        "address_line_1",
        "address_line_2",
        "postal_code",
        "city",
        "region",
        "country_code",
        "loyalty_tier",
        "offer_code",
        "offer_name",
        "offer_description",
    )
    sort_by: tuple[str, ...] = ("country_code", "postal_code", "last_name")
    marketing_action: str = "direct_mail"
    holdout_percent: float = 5
    cap_count: int = 1
    cap_days: int = 6
    header_note: str | None = "Winter catalogue 2026"
    footer_note: str | None = None
    seed_list: str = "proof_addresses"

    @property
    def moment(self) -> datetime:
        return datetime.fromisoformat(self.run_time.replace("Z", "+00:00")).replace(tzinfo=None)

    @property
    def run_id(self) -> str:
        return f"{self.campaign}@{self.run_time}"

    @property
    def cap_since(self) -> datetime:
        return self.moment - timedelta(days=self.cap_days)

    @property
    def holdout_below(self) -> int:
        return round(self.holdout_percent * 100)

    @property
    def order(self) -> list[str]:
        return [*self.sort_by, self.identity]

    def part_name(self, index: int, parts: int) -> str:
        """outbound/winter_catalog_20261123.csv (with _001, _002 … when split), as the runner names it."""
        return (
            f"outbound/{self.campaign}_{self.moment:%Y%m%d}" + (f"_{index:03d}" if parts > 1 else "") + ".csv"
        )


def _campaign_sql(job: Job) -> str:
    key = f"'{job.campaign}:' || cast({job.identity} as varchar)"
    bucket = f"cast(cast('0x' || left(md5({key}), 8) as ubigint) % 10000 as integer)"
    return (
        f"select {job.identity}, {', '.join(job.labels)}, {bucket} as holdout_bucket from main.{job.campaign}"
    )


def _read(job: Job, convert: str) -> dict:
    """Every table the job reads, as frames of the library (`convert`: DuckDB's `df` or `pl`)."""
    queries = {
        "campaign": _campaign_sql(job),
        "consents": "select profile_id, marketing_action, consent_value from main.stg_crm__consents",
        "addresses": "select profile_id, address_errors, household_key from main.int_profiles_addressed",
        "suppressions": "select profile_id, household_key, list_name from main.int_suppressions_keyed",
        "sends": "select profile_id, file_name, is_holdout, sent_at, run_id from direct_mail.sends",
        "seeds": f"select columns(*)::varchar from main.{job.seed_list} order by seed_id",
    }
    with duckdb.connect(str(job.database), read_only=True) as con:
        return {name: getattr(con.sql(sql), convert)() for name, sql in queries.items()}


def _parts(job: Job, rows: int, seed_rows: int) -> list[tuple[str, int, int]]:
    """(file name, first row, end row) of each part: seed rows take room in every part."""
    per_part = job.split_threshold - seed_rows
    parts = max(1, -(-rows // per_part))
    return [(job.part_name(i + 1, parts), i * per_part, min(rows, (i + 1) * per_part)) for i in range(parts)]


def _open_part(output: Path, name: str):
    path = output / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


def _note(text: str | None) -> bytes:
    return b"" if text is None else (text + "\n").encode()


# -- pandas ------------------------------------------------------------------------------------------------


def run_pandas(job: Job, output: Path) -> int:
    """The file with pandas; returns the profile rows written."""
    import pandas as pd

    t = _read(job, "df")
    campaign, consents, addresses = t["campaign"], t["consents"], t["addresses"]
    suppressions, sends = t["suppressions"], t["sends"]
    identity = job.identity

    value = consents["consent_value"].fillna("").str.strip().str.lower()
    refused = consents.loc[
        (consents["marketing_action"] == job.marketing_action) & (value == "n"), "profile_id"
    ]
    suppressed_profiles = suppressions["profile_id"].dropna()
    suppressed_households = suppressions["household_key"].dropna()
    valid = addresses.loc[addresses["address_errors"].fillna("") == "", ["profile_id", "household_key"]]
    recent = sends[
        ~sends["is_holdout"].astype(bool)
        & sends["file_name"].notna()
        & (sends["run_id"] != job.run_id)
        & (sends["sent_at"] >= job.cap_since)
    ]
    per_profile = recent.groupby("profile_id").size()
    capped = per_profile.index[per_profile >= job.cap_count]

    rows = campaign[~campaign[identity].isin(refused) & ~campaign[identity].isin(suppressed_profiles)]
    rows = rows.merge(valid, left_on=identity, right_on="profile_id", how="inner", validate="one_to_one")
    rows = rows[~rows["household_key"].isin(suppressed_households)]
    rows = rows.sort_values(job.order, na_position="last", kind="stable")
    written = list(job.labels)
    rows[written] = rows[written].fillna("")
    is_capped = rows[identity].isin(capped)
    if is_capped.any():  # a capped copy excludes every identical row (the runner decides per group)
        groups = pd.MultiIndex.from_frame(rows.loc[is_capped, written])
        rows = rows[~pd.MultiIndex.from_frame(rows[written]).isin(groups)]
    rows = rows[~rows.duplicated(subset=written, keep="first")]
    rows = rows[rows["holdout_bucket"] >= job.holdout_below]

    seeds = t["seeds"].reindex(columns=written).fillna("")
    output.mkdir(parents=True, exist_ok=True)
    for name, start, end in _parts(job, len(rows), len(seeds)):
        with _open_part(output, name) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
            out.write(_note(job.header_note).decode())
            rows.iloc[start:end].to_csv(out, columns=written, index=False, lineterminator="\n")
            seeds.to_csv(out, index=False, header=False, lineterminator="\n")
            out.write(_note(job.footer_note).decode())
    return len(rows)


# -- polars ------------------------------------------------------------------------------------------------


def run_polars(job: Job, output: Path) -> int:
    """The file with polars; returns the profile rows written."""
    import polars as pl

    t = _read(job, "pl")
    campaign, consents, addresses = t["campaign"], t["consents"], t["addresses"]
    suppressions, sends = t["suppressions"], t["sends"]
    identity = job.identity

    refused = consents.filter(
        (pl.col("marketing_action") == job.marketing_action)
        & (pl.col("consent_value").fill_null("").str.strip_chars().str.to_lowercase() == "n")
    ).select(pl.col("profile_id").alias(identity))
    suppressed_profiles = suppressions.select(pl.col("profile_id").alias(identity)).drop_nulls()
    suppressed_households = suppressions.select("household_key").drop_nulls()
    valid = addresses.filter(pl.col("address_errors").fill_null("") == "").select(
        pl.col("profile_id").alias(identity), "household_key"
    )
    capped = (
        sends.filter(
            ~pl.col("is_holdout")
            & pl.col("file_name").is_not_null()
            & (pl.col("run_id") != job.run_id)
            & (pl.col("sent_at") >= job.cap_since)
        )
        .group_by("profile_id")
        .len()
        .filter(pl.col("len") >= job.cap_count)
        .select(pl.col("profile_id").alias(identity))
    )

    written = list(job.labels)
    # '' and null are the same text in the file; null is what polars writes unquoted.
    as_text = [pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in written]
    rows = (
        campaign.join(refused, on=identity, how="anti")
        .join(suppressed_profiles, on=identity, how="anti")
        .join(valid, on=identity, how="inner", validate="1:1")
        .join(suppressed_households, on="household_key", how="anti")
        .sort(job.order, nulls_last=True, maintain_order=True)
        .with_columns(as_text)
    )
    is_capped = rows.join(capped, on=identity, how="semi")
    if is_capped.height:  # a capped copy excludes every identical row (the runner decides per group)
        rows = rows.join(is_capped.select(written).unique(), on=written, how="anti", nulls_equal=True)
    rows = rows.unique(subset=written, keep="first", maintain_order=True)
    rows = rows.filter(pl.col("holdout_bucket") >= job.holdout_below).select(written)

    seeds = t["seeds"]
    seeds = seeds.select(
        [
            pl.when(pl.col(c) != "").then(pl.col(c)).alias(c)
            if c in seeds.columns
            else pl.lit(None, pl.String).alias(c)
            for c in written
        ]
    )
    output.mkdir(parents=True, exist_ok=True)
    for name, start, end in _parts(job, rows.height, seeds.height):
        with _open_part(output, name) as out:
            out.write(_note(job.header_note))
            rows.slice(start, end - start).write_csv(out)
            seeds.write_csv(out, include_header=False)
            out.write(_note(job.footer_note))
    return rows.height
