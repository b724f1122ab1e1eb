"""Turn a built campaign table into the ordered, de-duplicated rows of the file, in the warehouse.

One temporary staging table per run holds every targeted profile with the reason it is excluded (if any)
and the detail of that reason, exported rows first and in file order, so that a row's position is its row
number in the file. The warehouse does the heavy
parts (consent, suppression, address and frequency joins, households, holdout, dedupe, ordering); Python
only streams the result out as Arrow batches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from directmail.campaign import Campaign, SortKey, written_columns
from directmail.config import AddressSource, ConsentSource, FrequencyCap, SuppressionSource
from directmail.history import PENDING_STATUSES, RETURNS, RUNS, SEND_ROWS, SENDS
from directmail.reasons import REASONS
from directmail.textformat import FORMULA_STARTS, LineEncoder
from directmail.valuechecks import ValueChecks
from directmail.valueformats import ISO, ValueFormats
from directmail.warehouse import Warehouse

ROW = "_dm_row"
IDENTITY = "_dm_identity"
REASON = "_dm_reason"
DETAIL = "_dm_detail"
LINE = "_dm_line"
EXPORTED = "exported"
UNKNOWN_ADDRESS = "address:not_validated"
# A profile with several returns is suppressed under the gravest: its detail is `return:<reason>`.
RETURN_REASONS_BY_GRAVITY = ("deceased", "refused", "moved", "undeliverable")


@dataclass(frozen=True)
class ConsentRule:
    relation: str
    source: ConsentSource
    marketing_action: str


@dataclass(frozen=True)
class AddressRule:
    relation: str
    source: AddressSource


@dataclass(frozen=True)
class SuppressionRule:
    relation: str
    source: SuppressionSource


@dataclass(frozen=True)
class ReturnsRule:
    """A mail house's returns (direct_mail.returns) suppress the profile, or only for `suppress_days`
    after returned_at, counted back from the run time `at`."""

    at: str  # ISO timestamp: the run time
    suppress_days: int | None = None


@dataclass(frozen=True)
class FrequencyRule:
    """A piece counts against the run at `at` when its run's time or its delivery time lies within the
    cap's days of `at` or of `now`, before or after (invariant I2): a run time in the past or the future
    cannot step around a piece the clock says went out recently."""

    cap: FrequencyCap
    at: str  # ISO timestamp: the run time
    run_id: str  # its own earlier sends (a forced re-delivery) do not count
    now: str = ""  # ISO timestamp: the delivery clock's now (default: the run time)
    replacing: tuple[str, ...] = ()  # run ids this run supersedes (on_existing: replace): not counted


@dataclass(frozen=True)
class NewEntrantsRule:
    """`audience: new_entrants`: profiles this campaign already delivered to are excluded."""

    campaign: str
    run_id: str  # its own earlier sends (a forced re-delivery) do not count
    replacing: tuple[str, ...] = ()  # run ids this run supersedes (on_existing: replace): not counted


@dataclass(frozen=True)
class Rules:
    """Which exclusions apply to a run, and where their data lives."""

    consent: ConsentRule | None = None
    addresses: AddressRule | None = None
    suppression: SuppressionRule | None = None
    frequency: FrequencyRule | None = None
    holdout: bool = True
    new_entrants: NewEntrantsRule | None = None
    returns: ReturnsRule | None = None


@dataclass
class ExtractPlan:
    """The SQL of one campaign run's extract, and the labels of the file's columns.

    The staging table is written in file order with the exported rows first, so an exported row's number
    in the file is its position in the table plus one: no second sort, and the history can name each
    row's part from its position.
    """

    campaign: Campaign
    labels: list[str]
    staging_table: str
    types: list[str] = dataclasses.field(default_factory=list)  # the warehouse type of each label
    exported: int = 0  # known once the staging table is filled (reason_summary)

    def row_number(self, warehouse: Warehouse) -> str:
        return f"({warehouse.dialect.insertion_position()} + 1)"

    def stream_sql(
        self, warehouse: Warehouse, encoder: LineEncoder, limit: int | None = None, lines_only: bool = False
    ) -> str:
        """Exported rows in file order: row number, identity, the text columns and the finished line (or,
        `lines_only`, for values already checked, the line alone: a quarter of the bytes to hand over)."""
        d = warehouse.dialect
        fields = _text_columns(len(self.labels))
        columns = ", ".join(f"{f} as {d.quote(label)}" for f, label in zip(fields, self.labels, strict=True))
        rows = self.exported if limit is None else min(self.exported, int(limit))
        values = "" if lines_only else f"{self.row_number(warehouse)} as {ROW}, {IDENTITY}, {columns}, "
        return (
            f"select {values}{encoder.line_sql(d, fields)} as {LINE} from {self.staging_table} "
            f"where {d.insertion_position()} < {rows}{d.position_order()}"
        )

    def any_failing_sql(self, warehouse: Warehouse, checks: ValueChecks) -> str:
        """One row (or none): whether an exported row has a value failing the checks."""
        d = warehouse.dialect
        failing = checks.failing_sql(d, _text_columns(len(self.labels)))
        return (
            f"select 1 as failing from {self.staging_table} "
            f"where {d.insertion_position()} < {self.exported} and ({failing}) limit 1"
        )

    def exclusions_sql(self, warehouse: Warehouse, run_id: str, attempt: int, at: datetime) -> str:
        """The run's `exclusions` rows: every targeted profile not exported, with reason and detail."""
        return self._history_rows_sql(
            warehouse, run_id, attempt, at, [REASON, DETAIL], f"{REASON} <> '{EXPORTED}'"
        )

    def sends_sql(
        self,
        warehouse: Warehouse,
        run_id: str,
        attempt: int,
        at: datetime,
        file_names: list[str],
        rows_per_part: int,
    ) -> str:
        """The run's `sends` rows: exported profiles with the file each is in, and the holdout."""
        d = warehouse.dialect
        part = f"cast(floor({d.insertion_position()} / {int(rows_per_part)}) as integer)"
        branches = " ".join(f"when {i} then {d.literal(name)}" for i, name in enumerate(file_names))
        file_name = f"case when {REASON} = '{EXPORTED}' then case {part} {branches} end end"
        return self._history_rows_sql(
            warehouse,
            run_id,
            attempt,
            at,
            [file_name, f"{REASON} = 'holdout'"],
            f"{REASON} in ('{EXPORTED}', 'holdout')",
        )

    def _history_rows_sql(
        self, warehouse: Warehouse, run_id: str, attempt: int, at: datetime, columns: list[str], where: str
    ) -> str:
        """Staging rows as history rows: run id, campaign, identity, `columns`, a timestamp, the attempt."""
        d = warehouse.dialect
        moment = d.literal(at.isoformat(sep=" "))
        return (
            f"select {d.literal(run_id)}, {d.literal(self.campaign.name)}, {IDENTITY}, "
            f"{', '.join(columns)}, cast({moment} as timestamp), {int(attempt)} "
            f"from {self.staging_table} where {where}"
        )


@dataclass
class _Parts:
    """Pieces of the staging statement contributed by each rule."""

    ctes: list[str]
    joins: list[str]
    reasons: list[tuple[str, str, str]]  # (condition, reason, detail expression): excluded outright
    # (condition, reason, detail): decided after households and duplicates, for the whole group
    group_reasons: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


def _rule_parts(warehouse: Warehouse, rules: Rules, identity: str) -> _Parts:
    d = warehouse.dialect
    q = d.quote
    parts = _Parts([], [], [])
    if rules.consent is not None:
        c = rules.consent.source
        parts.ctes.append(
            f"refusals as (select distinct cast({q(c.identity)} as {d.text_type}) as refused_identity "
            f"from {rules.consent.relation} "
            f"where {q(c.marketing_action)} = {d.literal(rules.consent.marketing_action)} "
            f"and lower(trim(coalesce(cast({q(c.value)} as {d.text_type}), ''))) = 'n')"
        )
        parts.joins.append(f"left join refusals on refusals.refused_identity = {identity}")
        parts.reasons.append(("refusals.refused_identity is not null", "no_postal_consent", "null"))
    if rules.addresses is not None:
        a = rules.addresses.source
        parts.ctes.append(
            # One row per profile (checked after the join: CampaignRun._check_row_count).
            f"address_rows as (select cast({q(a.identity)} as {d.text_type}) as address_identity, "
            f"coalesce(cast({q(a.errors)} as {d.text_type}), '') as address_errors, "
            f"{q(a.household_key)} as address_household "
            f"from {rules.addresses.relation})"
        )
        parts.joins.append(f"left join address_rows on address_rows.address_identity = {identity}")
    suppressed = []  # detail expressions, in order of precedence: lists by profile, by household, returns
    if rules.suppression is not None:
        s = rules.suppression.source
        matches = []  # (CTE name, key column in the suppression model, what it is compared with)
        if s.identity is not None:
            matches.append(("suppressed_profiles", f"cast({q(s.identity)} as {d.text_type})", identity))
        if s.household_key is not None and rules.addresses is not None:
            matches.append(("suppressed_households", q(s.household_key), "address_rows.address_household"))
        first_list = d.code_point_order(q(s.list))
        for name, key, compared in matches:
            parts.ctes.append(
                f"{name} as (select {key} as suppressed_key, min({first_list}) as list_name "
                f"from {rules.suppression.relation} where {key} is not null group by 1)"
            )
            parts.joins.append(f"left join {name} on {name}.suppressed_key = {compared}")
        suppressed += [f"{name}.list_name" for name, _, _ in matches]
    if rules.returns is not None:
        parts.ctes.append(_returns_cte(warehouse, rules.returns))
        parts.joins.append(f"left join returned on returned.returned_identity = {identity}")
        suppressed.append("returned.return_detail")
    if suppressed:
        list_name = f"coalesce({', '.join(suppressed)})" if len(suppressed) > 1 else suppressed[0]
        parts.reasons.append((f"{list_name} is not null", "suppressed", list_name))
    if rules.addresses is not None:
        parts.reasons.append(
            (
                "address_rows.address_identity is null or address_rows.address_errors <> ''",
                "invalid_address",
                f"coalesce(nullif(address_rows.address_errors, ''), '{UNKNOWN_ADDRESS}')",
            )
        )
    if rules.new_entrants is not None:
        n = rules.new_entrants
        parts.ctes.append(
            f"earlier_sends as (select profile_id as sent_identity, "
            f"max({d.code_point_order('run_id')}) as sent_run "
            f"from {SENDS} where {_pieces_sent(warehouse, (n.run_id, *n.replacing))} "
            f"and campaign = {d.literal(n.campaign)} group by 1)"
        )
        parts.joins.append(f"left join earlier_sends on earlier_sends.sent_identity = {identity}")
        parts.group_reasons.append(
            ("earlier_sends.sent_identity is not null", "already_sent", "earlier_sends.sent_run")
        )
    if rules.frequency is not None:
        parts.ctes.append(_recent_sends_cte(warehouse, rules.frequency))
        parts.joins.append(f"left join recent_sends on recent_sends.capped_identity = {identity}")
        f = rules.frequency
        pieces = f"cast(recent_sends.recent_pieces as {d.text_type})"
        detail = f"{pieces} || {d.literal(' in the last ' + str(f.cap.days))} || ' days'"
        parts.group_reasons.append(("recent_sends.capped_identity is not null", "frequency_cap", detail))
    return parts


def _recent_sends_cte(warehouse: Warehouse, rule: FrequencyRule) -> str:
    """Identities with at least the cap's count of pieces near the run time or now (I2): the committed
    sends, and the rows of attempts that may have landed but are not settled yet (another campaign's
    crashed drop counts until it is settled)."""
    d = warehouse.dialect
    days = int(rule.cap.days)

    def near(column: str) -> str:
        return " or ".join(
            f"{column} between {d.days_before(moment, days)} and {d.days_before(moment, -days)}"
            for moment in dict.fromkeys([rule.at, rule.now or rule.at])
        )

    skipped = ", ".join(d.literal(run_id) for run_id in (rule.run_id, *rule.replacing))
    pending = ", ".join(d.literal(status) for status in PENDING_STATUSES)
    committed = (
        f"select s.profile_id, s.sent_at, runs.run_time from {SENDS} as s "
        f"join {RUNS} as runs on runs.run_id = s.run_id "
        f"where not s.is_holdout and s.file_name is not null and s.run_id not in ({skipped})"
    )
    unsettled = (
        f"select r.profile_id, r.sent_at, runs.run_time from {SEND_ROWS} as r "
        f"join {RUNS} as runs on runs.run_id = r.run_id and runs.attempt = r.attempt "
        f"where runs.status in ({pending}) and runs.delivery_started_at is not null "
        "and (runs.committed_attempt is null or runs.committed_attempt <> r.attempt) "
        f"and not r.is_holdout and r.file_name is not null and r.run_id not in ({skipped})"
    )
    return (
        "recent_sends as (select profile_id as capped_identity, count(*) as recent_pieces "
        f"from ({committed} union all {unsettled}) as pieces "
        f"where {near('sent_at')} or {near('run_time')} "
        f"group by 1 having count(*) >= {int(rule.cap.count)})"
    )


def _returns_cte(warehouse: Warehouse, rule: ReturnsRule) -> str:
    """One row per returned identity still suppressing at the run time: `return:<gravest reason>`."""
    d = warehouse.dialect
    gravity = " ".join(f"when {d.literal(r)} then {i}" for i, r in enumerate(RETURN_REASONS_BY_GRAVITY))
    by_gravity = " ".join(
        f"when {i} then {d.literal('return:' + r)}" for i, r in enumerate(RETURN_REASONS_BY_GRAVITY)
    )
    recent = ""
    if rule.suppress_days is not None:
        recent = f" and returned_at > {d.days_before(rule.at, rule.suppress_days)}"
    return (
        f"returned as (select returned_identity, case gravest {by_gravity} end as return_detail "
        f"from (select identity as returned_identity, min(case reason {gravity} end) as gravest "
        f"from {RETURNS} where reason in ({', '.join(d.literal(r) for r in RETURN_REASONS_BY_GRAVITY)})"
        f"{recent} group by 1) as returns_by_identity)"
    )


def _pieces_sent(warehouse: Warehouse, run_ids: tuple[str, ...]) -> str:
    """`sends` rows that are pieces in a file (not the holdout), other than this run id's own earlier
    ones (a forced re-delivery) and the drops it replaces: what `already_sent` counts."""
    skipped = ", ".join(warehouse.dialect.literal(run_id) for run_id in run_ids)
    return f"not is_holdout and file_name is not null and run_id not in ({skipped})"


@dataclass
class _GroupColumns:
    """SQL fragments for the reasons decided per group: a member already sent or capped excludes the
    household's representative or the kept copy too, whoever represents the group this time."""

    own: str = ""  # targeted: each rule's condition and detail for the row itself
    household: str = ""  # households: the first member of the household it applies to
    copies: str = ""  # copies, rows with duplicates: the first copy it applies to (null for the others)
    reasons: str = ""  # `when … then reason` clauses, in order
    details: str = ""  # `when … then detail` clauses, in the same order


def _group_columns(
    group_reasons: list[tuple[str, str, str]], household_group: str, copy_key: str, text_type: str
) -> _GroupColumns:
    columns = _GroupColumns()
    for i, (condition, reason, detail) in enumerate(group_reasons):
        flag = f"_dm_g{i}"
        member = f"min(case when {flag} then {IDENTITY} || ': ' || {flag}_detail end)"
        columns.own += f",\n        coalesce({condition}, false) as {flag}, {detail} as {flag}_detail"
        household = f"{member} over ({household_group})" if household_group else "null"
        columns.household += f",\n        cast({household} as {text_type}) as {flag}_household"
        columns.copies += (
            f",\n        cast({member} over (partition by {copy_key}) as {text_type}) as {flag}_copy"
        )
        columns.reasons += (
            f"\n            when {flag} or {flag}_household is not null or {flag}_copy is not null "
            f"then '{reason}'"
        )
        columns.details += (
            f"\n            when {flag} then {flag}_detail"
            f"\n            when {flag}_household is not null then 'household member ' || {flag}_household"
            f"\n            when {flag}_copy is not null then 'duplicate ' || {flag}_copy"
        )
    return columns


def _text_columns(count: int) -> list[str]:
    """The staging table's names for the written columns, as text, in file order."""
    return [f"_dm_c{i}" for i in range(count)]


def _order(keys: list[SortKey], prefix: str) -> list[str]:
    return [f"{prefix}{i} {'desc' if k.descending else 'asc'} nulls last" for i, k in enumerate(keys)]


def _is_text(type_name: str) -> bool:
    return type_name.upper().split("(")[0].strip() in ("VARCHAR", "TEXT", "STRING", "CHARACTER VARYING")


def _formula_escaped(warehouse: Warehouse, expression: str) -> str:
    """A text value a spreadsheet would run as a formula, prefixed with ' (contract 2, escape_formulas)."""
    literal = warehouse.dialect.text_literal
    starts = ", ".join(literal(c) for c in FORMULA_STARTS)
    prefixed = f"{literal(chr(39))} || {expression}"
    return f"case when left({expression}, 1) in ({starts}) then {prefixed} else {expression} end"


def plan_extract(
    warehouse: Warehouse,
    campaign: Campaign,
    column_types: list[tuple[str, str]],
    rules: Rules,
    staging_name: str,
    escape_formulas: bool = False,
    formats: ValueFormats = ISO,
) -> tuple[ExtractPlan, str]:
    """The staging table's name and the statement that creates it (drop_staging first: a table of that
    name left by an earlier plan on the same connection is replaced).

    Every targeted row gets the first exclusion reason that applies (see REASONS) with a detail (the
    suppression list, the address errors, the household's representative or the first copy, the recent
    pieces and whose they are), and each exported row its position in the file. Typed values are written
    as `formats` says (the configuration's date_format, timestamp_format, decimal_separator).
    """
    d = warehouse.dialect
    q = d.quote
    spec = campaign.spec
    types = dict(column_types)
    labels = written_columns(campaign, [name for name, _ in column_types])
    # Every comparison of identities (order, first_value, min) is by code point, on every warehouse. An
    # empty identity is NULL here, as if missing: its row joins nothing, so the run stops (the row count).
    identity = d.code_point_order(f"nullif(cast(campaign.{q(spec.identity)} as {d.text_type}), '')")
    staging_table = d.temporary_relation(staging_name)  # it lives as long as the run's connection

    def sort_value(column: str) -> str:
        value = f"campaign.{q(column)}"
        return d.code_point_order(value) if _is_text(types[column]) else value

    fields = _text_columns(len(labels))
    texts = []
    for label in labels:
        text = d.as_text("campaign." + q(label), types[label], formats)
        if escape_formulas and _is_text(types[label]):
            text = _formula_escaped(warehouse, text)
        texts.append(text)
    formatted = [f"{text} as {field}" for text, field in zip(texts, fields, strict=True)]
    sort_values = [f"{sort_value(key.column)} as _dm_s{i}" for i, key in enumerate(spec.sort_keys)]
    order = ", ".join([*_order(spec.sort_keys, "_dm_s"), f"{IDENTITY} asc"])
    copy_key = ", ".join(fields)
    parts = _rule_parts(warehouse, rules, identity)

    household_values, household_window, household_group = [], "", ""
    if spec.household:
        if rules.addresses is not None:
            household = "address_rows.address_household"
        else:  # a household campaign has address_columns (the spec requires them)
            columns = spec.address_columns.all_columns() if spec.address_columns else []
            household = d.text_key([f"campaign.{q(c)}" for c in columns])
        household_values = [f"{sort_value(k.column)} as _dm_h{i}" for i, k in enumerate(spec.household_keys)]
        household_values.append(f"{household} as _dm_household")
        household_order = ", ".join([*_order(spec.household_keys, "_dm_h"), f"{IDENTITY} asc"])
        household_group = f"partition by _dm_excluded is null, coalesce(_dm_household, {IDENTITY})"
        household_window = f"over ({household_group} order by {household_order})"
    if household_window:
        member = f"case when _dm_excluded is null then row_number() {household_window} end"
        representative = f"first_value({IDENTITY}) {household_window}"
    else:
        member, representative = "1", "null"
    group = _group_columns(parts.group_reasons, household_group, copy_key, d.text_type)

    cases = (
        " ".join(f"when {cond} then '{reason}'" for cond, reason, _ in parts.reasons) or "when false then ''"
    )
    details = " ".join(f"when {cond} then {detail}" for cond, _, detail in parts.reasons)
    details = f"case {details} end" if details else "null"
    holdout_key = f"{d.literal(campaign.name + ':')} || {IDENTITY}"
    threshold = round(spec.holdout_percent * 100) if rules.holdout else 0
    in_holdout = f"{d.holdout_bucket(holdout_key)} < {threshold}" if threshold else "false"
    ctes = "".join(f"{cte},\n" for cte in parts.ctes)
    copy_hash = d.row_hash(texts)
    file_order = f"{REASON} <> '{EXPORTED}', {order}"
    flag_columns = "".join(
        f", _dm_g{i}, _dm_g{i}_detail, _dm_g{i}_household" for i in range(len(parts.group_reasons))
    )

    # Two passes over the campaign: a narrow one deciding each row (the joins, households, which rows may
    # repeat), materialized once, and a wide one with the written text that joins the decisions by
    # identity (unique per row: checked after the statement) on its way into the one sort. Only the
    # decisions are held whole, not every written value: less to spill within the memory limit.
    # Duplicates (rows whose written columns are all equal) are rare: only rows whose hash repeats among
    # the rows still in take part in the window that keeps the first copy in file order.
    not_materialized, materialized = d.cte_hint(False), d.cte_hint(True)
    select = f"""
with
{ctes}targeted as{not_materialized} (
    select
        {", ".join([f"{identity} as {IDENTITY}", *household_values])},
        case {cases} end as _dm_excluded,
        {details} as _dm_excluded_detail{group.own},
        {copy_hash} as _dm_copy_hash
    from {campaign.relation} as campaign
    {" ".join(parts.joins)}
),
households as{not_materialized} (
    select
        *,
        {member} as _dm_member,
        {representative} as _dm_representative{group.household}
    from targeted
),
flagged as{materialized} (
    select
        {IDENTITY},
        coalesce(_dm_excluded, case when _dm_member > 1 then 'household_duplicate' end) as _dm_flag,
        case
            when _dm_excluded is not null then _dm_excluded_detail
            when _dm_member > 1 then _dm_representative
        end as _dm_flag_detail,
        _dm_copy_hash{flag_columns}
    from households
),
repeated as (
    select _dm_copy_hash as _dm_repeated_hash
    from flagged
    where _dm_flag is null
    group by 1
    having count(*) > 1
),
decided as{not_materialized} (
    select
        flagged.*,
        flagged._dm_flag is null and repeated._dm_repeated_hash is not null as _dm_may_repeat
    from flagged
    left join repeated on flagged._dm_copy_hash = repeated._dm_repeated_hash
),
written as{not_materialized} (
    select
        {identity} as _dm_written_identity,
        {", ".join([*formatted, *sort_values])}
    from {campaign.relation} as campaign
),
copies as (
    select
        decided.{IDENTITY} as _dm_copy_identity,
        row_number() over copy_order as _dm_copy,
        first_value(decided.{IDENTITY}) over copy_order as _dm_first_copy{group.copies}
    from decided
    inner join written on decided.{IDENTITY} = written._dm_written_identity
    where decided._dm_may_repeat
    window copy_order as (partition by {copy_key} order by {order})
),
reasoned as{not_materialized} (
    select
        decided.*,
        written.*,
        case
            when _dm_flag is not null then _dm_flag
            when _dm_copy > 1 then 'duplicate'{group.reasons}
            when {in_holdout} then 'holdout'
            else '{EXPORTED}'
        end as {REASON},
        case
            when _dm_flag is not null then _dm_flag_detail
            when _dm_copy > 1 then _dm_first_copy{group.details}
        end as {DETAIL}
    from written
    inner join decided on written._dm_written_identity = decided.{IDENTITY}
    left join copies on written._dm_written_identity = copies._dm_copy_identity
)
select {IDENTITY}, {copy_key}, {REASON}, {DETAIL}{d.position_column(file_order)}
from reasoned
order by {file_order}
"""
    sql = d.create_temporary_table(staging_table, select)
    return ExtractPlan(campaign, labels, staging_table, [types[label] for label in labels]), sql


DETAILED_REASONS = ("suppressed", "invalid_address")


def reason_summary(
    warehouse: Warehouse, plan: ExtractPlan
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Rows per reason, and per suppression list and address error code (an address can fail on
    several), from one pass over the staging table."""
    detailed = ", ".join(f"'{reason}'" for reason in DETAILED_REASONS)
    table = warehouse.query(
        f"select {REASON} as reason, case when {REASON} in ({detailed}) then {DETAIL} end as detail, "
        f"count(*) as n from {plan.staging_table} group by 1, 2"
    )
    counts = dict.fromkeys((*REASONS, EXPORTED), 0)
    details: dict[str, dict[str, int]] = {}
    for reason, detail, n in zip(*(table[c].to_pylist() for c in ("reason", "detail", "n")), strict=True):
        counts[reason] = counts.get(reason, 0) + n
        if reason not in DETAILED_REASONS:
            continue
        codes = (detail or "").split(";") if reason == "invalid_address" else [detail or ""]
        for code in codes:
            per_reason = details.setdefault(reason, {})
            per_reason[code] = per_reason.get(code, 0) + n
    return counts, {reason: dict(sorted(codes.items())) for reason, codes in sorted(details.items())}


def stream_rows(
    warehouse: Warehouse,
    plan: ExtractPlan,
    encoder: LineEncoder,
    batch_size: int = 65_536,
    lines_only: bool = False,
) -> pa.RecordBatchReader:
    return warehouse.stream(plan.stream_sql(warehouse, encoder, lines_only=lines_only), batch_size)


def file_lines(batch: pa.RecordBatch) -> pa.Array:
    """A streamed batch's finished lines (contract 3's text of each row, line ending included)."""
    return batch.column(batch.schema.get_field_index(LINE))


def drop_staging(warehouse: Warehouse, plan: ExtractPlan) -> None:
    warehouse.execute(f"drop table if exists {plan.staging_table}")
