"""One campaign run: check → build → extract → write → deliver → record.

The one run lifecycle: `execute()` runs the steps in order under the warehouse lock and records a failed
run with its reason, whether it is called directly (`directmail run` without a Prefect API) or by the
Prefect flow, which passes a `StepRunner` that runs each step as a task. Files, history and report are
identical either way.

Exactly once (contract 5): `deliver` records the run `delivering` with its planned files and its rows
pending before the first byte leaves; `record` commits them with the status `delivered` after the
manifest landed. `check` settles a run id that an earlier attempt left `delivering` (or `failed` after
its delivery started) from what the destination holds.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from directmail import address_validations
from directmail.buildtimings import BuildTimings
from directmail.campaign import Campaign, check_against_config, check_columns
from directmail.config import CONFIG_FILE, Configuration, Routing, resolve_directory
from directmail.delivery import Destination, describe_routing, destination_key, open_destination
from directmail.delivery.drop import DropInTheWay as Drop
from directmail.delivery.drop import (
    drops_in_the_way,
    relative_name,
    remove_with_sidecars,
    replace_earlier_drop,
)
from directmail.delivery.preflight import routing_findings
from directmail.encryption import KeyProblem, encrypt_staged, load_public_key
from directmail.errors import (
    AlreadyDelivered,
    ConfigError,
    DeliveryError,
    DirectMailError,
    DropInTheWay,
    ExtractInvalid,
    Finding,
    FutureRunTime,
    RowsRefused,
    Settled,
    StagingFailed,
)
from directmail.extract import (
    EXPORTED,
    ExtractPlan,
    Rules,
    drop_staging,
    file_lines,
    plan_extract,
    reason_summary,
    stream_rows,
)
from directmail.fixedwidth import fixed_width_encoder
from directmail.history import (
    DELIVERED,
    DELIVERING,
    DRY_RUN,
    DRY_RUN_EMPTY,
    EMPTY,
    FAILED,
    ONCE_DELIVERED,
    SUPERSEDED,
    History,
    RunRecord,
)
from directmail.journal import FILES_LANDED, NOT_LANDED, Journal, journal_path
from directmail.layout import FileLayout
from directmail.locking import warehouse_lock
from directmail.namecollisions import campaign_layout
from directmail.preview import excluded_rows, preview_lines
from directmail.project import Project
from directmail.rules import TEST_PROFILES_VAR, Relations, resolve_rules, test_profile_relations
from directmail.secrets import scrub
from directmail.seedlist import SeedRows, read_seed_rows
from directmail.settlement import earlier_drop_files, settle
from directmail.textformat import LineEncoder
from directmail.valuechecks import ValueChecks, header_findings, value_checks
from directmail.warehouse import Warehouse, open_warehouse, query_labels
from directmail.writer import (
    FileTexts,
    PartsWriter,
    StagedFile,
    os_problem,
    out_of_space,
    write_checksum,
    write_manifest,
)

STEPS = ("check", "build", "extract", "write", "deliver", "record")
WORK_DIR = ".directmail"
FUTURE_LIMIT = timedelta(hours=24)  # I2: a later run time needs --allow-future
EARLIEST_RUN_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def parse_run_time(value: str | datetime | None) -> datetime:
    """The run's time in UTC, to the second. Naive values are taken as UTC."""
    if value is None:
        moment = datetime.now(UTC)
    elif isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC).replace(microsecond=0)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first representable instant
        raise ValueError(f"{value} is out of range; run times are from 1970 on") from None
    if moment < EARLIEST_RUN_TIME:
        raise ValueError(f"{value} is before 1970-01-01T00:00:00Z; run times are from 1970 on")
    return moment


def make_run_id(campaign: str, run_time: datetime) -> str:
    return f"{campaign}@{run_time.strftime('%Y-%m-%dT%H:%M:%SZ')}"


@dataclass
class RunOptions:
    run_time: datetime
    dry_run: bool = False
    force: bool = False
    skip_build: bool = False
    batch_size: int = 65_536
    test_profiles: bool = False  # a proof: built from the project's test profiles; no holdout or cap
    allow_future: bool = False  # a run time more than FUTURE_LIMIT after now (I2)


Progress = Callable[[str], None]
StepRunner = Callable[[str, Callable[[], None]], None]  # (step name, step) → runs it (a Prefect task)


def run_inline(name: str, step: Callable[[], None]) -> None:
    step()


class CampaignRun:
    def __init__(
        self, project: Project, campaign_name: str, options: RunOptions, progress: Progress | None = None
    ):
        self.project = project
        self.campaign: Campaign = project.campaign(campaign_name)
        self.options = options
        self.progress = progress or (lambda message: None)
        self.run_id = make_run_id(self.campaign.name, options.run_time)
        configuration = project.config.configurations.get(self.campaign.spec.configuration)
        if configuration is None:  # refused with the same findings as validate gives
            raise ConfigError(check_against_config(self.campaign, project.config))
        self.configuration: Configuration = configuration
        self.routing_name = self.configuration.routing
        self.record = RunRecord(
            run_id=self.run_id,
            campaign=self.campaign.name,
            run_time=options.run_time.replace(tzinfo=None),
            status="running",
            started_at=_now(),
            configuration=self.campaign.spec.configuration,
        )
        self.layout = self._layout_of(self.campaign, options.run_time)
        self._compiled_sql: str | None = None
        self._warehouse: Warehouse | None = None
        self._plan: ExtractPlan | None = None
        self._relations = Relations()
        self._rows_per_part: int | None = None  # profile rows per part, once written (seed rows take room)
        self._earlier_files: list[str] = []  # relative names an earlier attempt or drop may have left
        self._own_strays: list[str] = []  # what this run id's earlier, never-completed attempt put
        self.seeds: SeedRows | None = None
        self._superseding: list[RunRecord] = []  # delivered runs whose drop this one replaces (I1)
        self.staged: list[StagedFile] = []
        self.empty = False  # nothing to export and on_empty: skip
        self.staging_dir = (
            project.directory / WORK_DIR / ("dry-run" if options.dry_run else "staging") / _safe(self.run_id)
        )

    # -- steps -----------------------------------------------------------------------------------------

    def check(self) -> None:
        """Everything that can be refused before any work: status, configuration, routing, run id; and
        an earlier attempt of this run id that may have delivered is settled first."""
        spec = self.campaign.spec
        if spec.status != "active" and not self.options.dry_run:  # a draft can be previewed, never sent
            reason = "the campaign is a draft; drafts never run (preview or --dry-run it)"
            raise ConfigError([_campaign_finding(self.campaign, "status", reason)])
        if findings := check_against_config(self.campaign, self.project.config):
            raise ConfigError(findings)
        routing = self.routing
        if findings := routing_findings(self.routing_name, routing, self.project.directory):
            raise ConfigError(findings)
        self.record.destination = f"{self.routing_name}: {describe_routing(routing, self.project.directory)}"
        self._check_run_time()
        with self._open_history() as history:
            previous = history.find(self.run_id)
            if not self.options.dry_run:
                self._settle_others(history)
            self._earlier_files = earlier_drop_files(history, previous, self.campaign.name, self.layout)
            self.record.attempt = history.next_attempt(self.run_id, previous)
            if previous is not None:
                self.record.committed_attempt = previous.committed_attempt
                if previous.may_have_landed and not self.options.dry_run:
                    self._settle(history, previous)
                    self._own_strays = [relative_name(self.layout, f["name"]) for f in previous.files]
                elif (
                    previous.status in ONCE_DELIVERED and not self.options.force and not self.options.dry_run
                ):
                    # A superseded run was delivered too: its pieces may be printed already (I4).
                    replaced = f", then replaced at the destination ({previous.message})"
                    raise AlreadyDelivered(
                        f"{self.run_id} was already delivered at {previous.finished_at:%Y-%m-%d %H:%M:%S} "
                        f"UTC ({previous.exported} rows){replaced if previous.status == SUPERSEDED else ''}; "
                        "nothing delivered again (use --force to deliver again)"
                    )
            if not self.options.dry_run:
                self._check_drops_in_the_way(history)

    def _check_run_time(self) -> None:
        """I2: a run time far in the future would count the cap from a moment nobody has reached."""
        if self.options.allow_future or self.options.dry_run:
            return
        latest = datetime.now(UTC) + FUTURE_LIMIT
        if self.options.run_time > latest:
            raise FutureRunTime(
                f"{self.run_id}: the run time is more than {FUTURE_LIMIT.days * 24} h after now "
                f"({datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}); nothing run (--allow-future runs it on purpose)"
            )

    def _settle_others(self, history: History) -> None:
        """I3: before extracting, settle every other run id of this campaign, or of a campaign sharing
        its destination, that a crash left with a drop that may have landed: its pieces then count (or
        are discarded) before this run decides who is mailed."""
        sharing = self._campaigns_sharing_destination()
        for earlier in history.unsettled(list(sharing), self.run_id):
            campaign = sharing[earlier.campaign]
            layout = self._layout_of(campaign, earlier.run_time.replace(tzinfo=UTC))
            configuration = self.project.config.configurations[campaign.spec.configuration]
            # Its parts may be here without a manifest: they go with the next drop under these names.
            self._earlier_files += [relative_name(layout, f["name"]) for f in earlier.files]
            settled = settle(
                history,
                earlier,
                self._destination,
                layout,
                configuration.manifest,
                earlier.attempt,
                self._journal(),
                by=self.run_id,
            )
            outcome = (
                "delivered (its drop had landed)" if settled else "not delivered (its drop never completed)"
            )
            self.progress(f"settled {earlier.run_id}, left by a crash: recorded {outcome}")

    def _campaigns_sharing_destination(self) -> dict[str, Campaign]:
        """This campaign, and every campaign whose routing lands where this one's does."""
        config, here = self.project.config, destination_key(self.routing, self.project.directory)
        sharing = {self.campaign.name: self.campaign}
        for name, campaign in self.project.campaigns.items():
            configuration = config.configurations.get(campaign.spec.configuration)
            routing = config.routing.get(configuration.routing) if configuration else None
            if routing is not None and destination_key(routing, self.project.directory) == here:
                sharing.setdefault(name, campaign)
        return sharing

    def _check_drops_in_the_way(self, history: History) -> None:
        """I1: a delivered drop of another run id still under this run's names stops the run before
        anything leaves, or (on_existing: replace) is replaced on purpose and recorded superseded."""
        delivered = [
            (run.run_id, [relative_name(self.layout, f["name"]) for f in run.files])
            for run in history.delivered(self.campaign.name)
        ]
        # This run id's own crashed attempt wrote its names last: what it left there is its, not in the way.
        delivered.append((self.run_id, self._own_strays))

        def status_of(run_id: str) -> str | None:
            record = history.find(run_id)
            return record.status if record is not None else None

        destination = self._destination()
        try:
            found = drops_in_the_way(destination, self.layout, self.run_id, delivered, status_of)
        finally:
            destination.close()
        if not found:
            return
        if self.configuration.on_existing != "replace":
            raise DropInTheWay(_in_the_way_message(self.run_id, self.campaign, found, destination.describe()))
        for drop in found:
            self._earlier_files += list(drop.names)
            record = history.find(drop.run_id) if drop.recorded and drop.run_id else None
            if record is not None and record.status == DELIVERED:
                self._superseding.append(record)
            self.progress(f"replacing the drop of {drop.run_id or 'an unknown run'} (on_existing: replace)")

    def _settle(self, history: History, previous: RunRecord) -> None:
        # Until settled, this attempt's record keeps what makes the earlier one settleable, should it fail.
        self.record.delivery_started_at, self.record.files = previous.delivery_started_at, previous.files
        settled = settle(
            history,
            previous,
            self._destination,
            self.layout,
            self.configuration.manifest,
            self.record.attempt,
            self._journal(),
        )
        self.record.delivery_started_at = None
        if settled is None:
            self.progress(f"the earlier attempt of {self.run_id} did not complete its drop: delivering again")
            return
        self.progress(settled.message)
        self.record.committed_attempt = settled.committed_attempt
        if not self.options.force:
            self.record = settled
            raise Settled(
                f"{self.run_id}: the earlier attempt's drop had landed at the destination; recorded "
                f"delivered ({previous.exported} rows), nothing delivered again"
            )

    def build_selection(self) -> tuple[str | None, list[str]]:
        """What a run builds: the model whose addresses it validates first (or None), and the selection of
        the second build: the campaign and every model or seed the runner reads, with their upstream."""
        upstream = [self.campaign.unique_id, self.project.consent_unique_id]
        upstream += [ref.unique_id for ref in self.project.sources.values()]
        select = ["+" + uid.split(".")[-1] for uid in upstream if uid]
        if self.campaign.spec.seed_list:
            select.append(self.campaign.spec.seed_list)
        collected = self.project.config.addresses and self.project.config.addresses.validate_model
        return collected or None, select

    def build(self) -> None:
        """dbt build of the campaign and of every model or seed the runner reads, with their upstream.

        With `addresses.validate`, in two builds: that model and its upstream first, then its new or
        changed addresses validated into direct_mail.address_validations, then the rest of the selection,
        which reads them. Where the time went is kept in `.directmail/builds/<campaign>.json`."""
        run_vars: dict[str, Any] = {"run_time": self.options.run_time.strftime("%Y-%m-%d %H:%M:%S")}
        if self.options.test_profiles:
            run_vars[TEST_PROFILES_VAR] = True
            self._relations = test_profile_relations(self.project, self.campaign, run_vars)
        if self.options.skip_build:
            return
        if not self.options.test_profiles:
            self._check_columns_before_build(run_vars)
        collected, select = self.build_selection()
        with_tests = not self.options.test_profiles
        exclude: list[str] = []
        timings = BuildTimings(self.run_id)
        if collected:  # the addresses first, validated before the models that read the results
            first = address_validations.build_and_validate(
                self.project.dbt,
                collected,
                run_vars,
                with_tests=with_tests,
                batch_size=self.options.batch_size,
                progress=self.progress,
            )
            timings.add_build(["+" + collected], [], first.built)
            timings.addresses = first.report
            if self.options.test_profiles:
                self._relations.moved.update(first.built.relations)
            exclude = ["+" + collected]
        excluding = f" --exclude {' '.join(exclude)}" if exclude else ""
        self.progress(f"dbt build {' '.join(select)}{excluding}")
        built = self.project.dbt.build(select, run_vars, with_tests=with_tests, exclude=exclude)
        timings.add_build(select, exclude, built)
        timings.save(self.project.directory / WORK_DIR / "builds" / f"{self.campaign.name}.json")
        if not self.options.test_profiles:  # a proof builds in a schema of its own
            fingerprint = self.project.dbt.code_fingerprint(self.campaign.unique_id, run_vars)
            self._code_path().write_text(json.dumps(fingerprint, sort_keys=True))
        self._compiled_sql = built.compiled.get(self.campaign.unique_id)
        if self.options.test_profiles:
            self._relations.moved.update(built.relations)

    def _check_columns_before_build(self, run_vars: dict[str, Any]) -> None:
        """What `validate` checks of the model's columns, before minutes of build: its query compiled
        (with the run's own parse) and described against the tables as they are, when they were last
        built from the code there is now (else a column just added upstream would be missed). Skipped
        otherwise, and when the tables are not built yet; the same check runs on the built model."""
        if self._built_code() != self.project.dbt.code_fingerprint(self.campaign.unique_id, run_vars):
            return  # code changed since the last build: the tables as they are may lack new columns
        try:
            sql = self.project.dbt.compile_many([self.campaign.name], run_vars).get(self.campaign.unique_id)
            warehouse = open_warehouse(self.project.dbt.target_info(), self.project.directory)
            try:
                labels = query_labels(warehouse, sql) if sql else None
            finally:
                warehouse.close()  # dbt opens the warehouse file next
        except Exception:  # upstream tables missing, or a model dbt cannot compile: the build says why
            return
        if labels is not None and (findings := check_columns(self.campaign, labels)):
            raise ConfigError(findings)

    def extract(self) -> None:
        """Check the model's columns, then stage the ordered extract with every exclusion reason."""
        warehouse = self._open()
        campaign = replace(
            self.campaign, relation=self._relations.of(self.campaign.unique_id, self.campaign.relation)
        )
        if not warehouse.relation_exists(campaign.relation):
            reason = "the campaign table is not built (run without --skip-build)"
            raise ConfigError([_campaign_finding(self.campaign, "", reason)])
        labels = query_labels(warehouse, self._compiled_sql or f"select * from {campaign.relation}")
        findings = check_columns(self.campaign, labels)
        if findings:
            raise ConfigError(findings)
        column_types = warehouse.describe(f"select * from {campaign.relation}")
        staging_name = f"extract__{self.campaign.name}" + (
            "__test_profiles" if self.options.test_profiles else ""
        )
        rules = self._rules()
        configuration = self.configuration
        self._plan, sql = plan_extract(
            warehouse,
            campaign,
            column_types,
            rules,
            staging_name,
            configuration.escape_formulas,
            configuration.value_formats,
        )
        self.progress("excluding, de-duplicating and ordering in the warehouse")
        History(warehouse).ensure_tables()
        warehouse.refresh_statistics(campaign.relation)  # just built: the planner has not seen it
        drop_staging(warehouse, self.plan)
        try:
            warehouse.execute(sql)
        except Exception as exc:
            if (problem := out_of_space(exc)) is None:
                raise
            raise StagingFailed(
                f"{self.run_id}: the warehouse ran out of disk space while staging the extract: {problem}; "
                "nothing delivered"
            ) from None
        counts, self.record.exclusion_details = reason_summary(warehouse, self.plan)
        self.plan.exported = counts[EXPORTED]
        self.record.targeted = sum(counts.values())
        self._check_row_count(campaign.relation, rules)
        self.record.excluded = {reason: n for reason, n in counts.items() if reason != EXPORTED}
        self.record.holdout = counts["holdout"]
        self.record.duplicates_removed = counts["duplicate"]
        self.record.exported = counts[EXPORTED]
        self.seeds = self._read_seeds()

    def _check_row_count(self, relation: str, rules: Rules) -> None:
        """The staging table has one row per campaign row, or the run stops before writing anything.

        The extract joins the campaign's rows to their decisions by identity, and the addresses source as
        is (one row per profile, no aggregation at scale): an identity on several rows (a person mailed
        twice), an empty identity (no history could name it) or an addresses source with several rows
        for a profile changes the count; the finding names which.
        """
        rows = self._open().query(f"select count(*) as n from {relation}")["n"][0].as_py()
        if self.record.targeted == rows:
            return
        warehouse, column = self._open(), self.campaign.spec.identity
        identity = f"cast({warehouse.dialect.quote(column)} as {warehouse.dialect.text_type})"
        empty = f"{identity} is null or {identity} = ''"
        repeated = warehouse.query(
            f"select {identity} as identity, count(*) as n from {relation} group by {identity} "
            f"having count(*) > 1 or {empty} order by case when {empty} then 0 else 1 end limit 1"
        ).to_pylist()
        if repeated and repeated[0]["identity"] in (None, ""):
            reason = f"the identity column {column} is empty on some rows; it must name every row's profile"
            raise RowsRefused([_campaign_finding(self.campaign, "identity", reason)])
        if repeated:
            reason = (
                f"the identity column {column} is not unique: {repeated[0]['identity']!r} is on "
                f"{repeated[0]['n']} rows; a campaign has one row per profile (declare dbt's unique test)"
            )
            raise RowsRefused([_campaign_finding(self.campaign, "identity", reason)])
        if rules.addresses is None:
            raise ExtractInvalid(f"{self.campaign.name}: {self.record.targeted:,} staged rows for {rows:,}")
        reason = (
            f"the addresses source has more than one row for some {rules.addresses.source.identity}; it "
            "must have one row per profile"
        )
        raise RowsRefused([Finding(CONFIG_FILE, "addresses", reason)])

    def _rules(self) -> Rules:
        return resolve_rules(
            self.project,
            self.configuration,
            self._relations,
            self.campaign,
            self.options.run_time.strftime("%Y-%m-%d %H:%M:%S"),
            self.run_id,
            proof=self.options.test_profiles,
            now=_now().strftime("%Y-%m-%d %H:%M:%S"),
            replacing=tuple(run.run_id for run in self._superseding),
        )

    def _read_seeds(self) -> SeedRows | None:
        name = self.campaign.spec.seed_list
        if name is None:
            return None
        relation = self._relations.of_node(self.project.seeds[name])
        formats = self.configuration.value_formats
        seeds = read_seed_rows(
            self._open(), relation, self.campaign, self.plan.labels, self._encoder(), formats
        )
        if findings := seeds.findings(self.campaign, self.configuration.split_threshold):
            raise ConfigError(findings)
        return seeds

    def write(self) -> None:
        """Stream, validate and write every part into the staging folder; fail before any delivery. A full
        disk (or another OS error there) stops the run with one line, the staging folder removed."""
        if self.record.exported == 0 and self._empty_run():
            return
        try:
            self._write_staged()
        except Exception as exc:
            problem = os_problem(exc) if isinstance(exc, OSError) else out_of_space(exc)
            if problem is None:
                raise
            shutil.rmtree(self.staging_dir, ignore_errors=True)
            raise StagingFailed(
                f"{self.run_id}: could not write the extract into the staging folder {self.staging_dir}: "
                f"{problem}; nothing delivered"
            ) from None

    def _write_staged(self) -> None:
        configuration, spec = self.configuration, self.campaign.spec
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        self.staging_dir.mkdir(parents=True)
        encoder = self._encoder()
        fixed_width = configuration.format == "fixed_width"
        written_labels = [] if fixed_width else self.plan.labels  # a fixed-width file has no label row
        if findings := header_findings(self.campaign, written_labels, configuration.encoding):
            raise ConfigError(findings)
        widths = spec.column_widths if fixed_width else None
        checks = value_checks(self.campaign, self.plan.labels, configuration.encoding, widths)
        writer = PartsWriter(
            self.staging_dir,
            replace(self.layout, encrypted=False),
            encoder,
            FileTexts(
                self.plan.labels,
                spec.header_note,
                spec.footer_note,
                self.seeds.lines() if self.seeds else None,
            ),
            self.record.exported,
            configuration.split_threshold,
        )
        self.progress(f"writing {self.record.exported:,} rows")
        failure_count, failures = 0, ""
        try:
            if self._values_pass(checks):  # nearly every run: no pandera, only the finished lines
                batch_size = self.options.batch_size
                with stream_rows(self._open(), self.plan, encoder, batch_size, lines_only=True) as rows:
                    for batch in rows:  # closed on a failure too: the warehouse is free for what follows
                        writer.write(file_lines(batch))
            else:  # pandera names every failing value (row, identity, column, reason)
                failure_count, failures = self._validate_and_write(writer, encoder, checks, widths)
            staged = writer.close()
        except BaseException:
            writer.abort()
            raise
        self.record.seed_rows = writer.seed_rows * len(staged)
        self._rows_per_part = writer.split_threshold
        if failure_count:
            shutil.rmtree(self.staging_dir, ignore_errors=True)
            raise ExtractInvalid(failures)
        if self.layout.encrypted:
            staged = self._encrypt(staged)
        self.staged = staged
        self.record.files = [f.summary() for f in staged]

    def _values_pass(self, checks: ValueChecks) -> bool:
        """Whether every value of the extract and of the seed rows passes the checks: one warehouse query
        over the staging table, and Python over the (at most 1,000) seed rows."""
        if self.seeds is not None:
            values = [self.seeds.batch.column(label).to_pylist() for label in self.plan.labels]
            if any(checks.row_fails(list(row)) for row in zip(*values, strict=True)):
                return False
        if self.record.exported == 0:
            return True
        return not self._open().query(self.plan.any_failing_sql(self._open(), checks)).num_rows

    def _validate_and_write(
        self, writer: PartsWriter, encoder: LineEncoder, checks: ValueChecks, widths: dict[str, int] | None
    ) -> tuple[int, str]:
        """Validate every batch with pandera (imported only here), writing while none failed: how many
        values failed, and the report of the first of them."""
        from directmail.schema import ExtractValidator

        validator = ExtractValidator(self.campaign, self.plan.labels, checks.encoding, widths)
        if self.seeds is not None:
            validator.validate(self.seeds.batch)
        with stream_rows(self._open(), self.plan, encoder, self.options.batch_size) as batches:
            for batch in batches:
                validator.validate(batch)
                if validator.failure_count == 0:
                    writer.write(file_lines(batch))
        return validator.failure_count, validator.describe_failures()

    def _empty_run(self) -> bool:
        """No profile to export: on_empty decides (skip: nothing delivered, recorded `empty`)."""
        on_empty = self.configuration.on_empty
        if on_empty == "fail":
            raise ExtractInvalid(
                f"{self.campaign.name}: no profile to export ({self.record.targeted:,} targeted, all "
                f"excluded); the configuration's on_empty is fail"
            )
        if on_empty == "skip":
            self.empty = True
            self.record.files = []
            self.progress("no profile to export: nothing delivered (on_empty: skip)")
        return self.empty

    def deliver(self) -> None:
        """Record `delivering`, remove what an earlier drop under these names would leave, then data
        files (and checksums) and the manifest last: its arrival means the drop is complete."""
        if self.options.dry_run:
            return
        if self.empty:  # nothing to deliver, but the parts a crashed attempt of this run id left go (I5)
            if self._own_strays:
                self._remove_own_strays()
            return
        history = History(self._open())
        previous = history.find(self.run_id)
        if previous and previous.status in ONCE_DELIVERED and not self.options.force:
            raise AlreadyDelivered(f"{self.run_id} was delivered by another run in the meantime")
        self.record.status = DELIVERING
        self.record.delivery_started_at = _now()
        names = [f.name for f in self.staged]
        at = self.record.delivery_started_at
        rows_per_part = self._rows_per_part or self.configuration.split_threshold
        attempt = self.record.attempt
        sends = self.plan.sends_sql(self._open(), self.run_id, attempt, at, names, rows_per_part)
        exclusions = self.plan.exclusions_sql(self._open(), self.run_id, attempt, at)
        try:
            history.mark_delivering(self.record, sends, exclusions, self._superseding)
        except BaseException:  # not recorded delivering: nothing has left, nothing to settle
            self.record.delivery_started_at = None
            raise
        destination = self._destination()
        try:
            replace_earlier_drop(destination, self.layout, names, self._earlier_files, self.progress)
            self._put_files(destination)
        except DirectMailError:
            raise
        except Exception as exc:  # a library error no destination anticipated: keep its reason, not secrets
            raise DeliveryError(
                scrub(f"delivery to {self.routing_name} failed: {type(exc).__name__}: {exc}")
            ) from None
        finally:
            destination.close()
        self.record.destination = f"{self.routing_name}: {destination.describe()}"

    def _put_files(self, destination: Destination) -> None:
        for staged in self.staged:
            self.progress(f"delivering {staged.name}")
            destination.put(staged.path, staged.name)
            if self.configuration.checksums:
                checksum = write_checksum(self.staging_dir, staged)
                destination.put(checksum, FileLayout.checksum_name(staged.name))
        marker = self.staged[-1].name if self.staged else ""
        if self.configuration.manifest:
            manifest = write_manifest(self.staging_dir, self.layout, self.manifest())
            marker = self.layout.manifest_name
            journal, started = self._journal(), self.record.delivery_started_at
            try:  # FILES_LANDED once the manifest is wholly sent, just before it appears (I4)
                destination.put(
                    manifest,
                    marker,
                    before_commit=lambda: journal.record(
                        self.run_id, self.record.attempt, marker, started, FILES_LANDED
                    ),
                )
            except DeliveryError:  # nothing under its name: the journal must not read its absence as taken
                journal.record(self.run_id, self.record.attempt, marker, started, NOT_LANDED)
                raise
        # I4: the drop is complete; say so locally before the history commit, since from now on the mail
        # house may take the files and the destination can no longer tell.
        self._journal().record(self.run_id, self.record.attempt, marker, self.record.delivery_started_at)

    def record_run(self) -> None:
        """One statement: the run `delivered`, this attempt's rows the ones `sends` and `exclusions` show."""
        if self.options.dry_run:
            self.record.status = DRY_RUN_EMPTY if self.empty else DRY_RUN
            return
        self.record.finished_at = _now()
        history = History(self._open())
        if self.empty:
            self.record.status = EMPTY
            exclusions = self.plan.exclusions_sql(
                self._open(), self.run_id, self.record.attempt, self.record.finished_at
            )
            history.record_empty(self.record, exclusions)
            return
        self.record.status = DELIVERED
        history.commit_delivered(self.record)

    # -- whole run --------------------------------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        """The run's steps in order."""
        methods = [self.check, self.build, self.extract, self.write, self.deliver, self.record_run]
        return list(zip(STEPS, methods, strict=True))

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the warehouse for the whole run: a second run waits here rather than failing."""
        with warehouse_lock(self.project.dbt.target_info(), self.project.directory, self.progress):
            yield

    def execute(self, run_step: StepRunner = run_inline) -> RunRecord:
        """Every step in order, under the warehouse lock; a failure is recorded, then raised."""
        with self.exclusive():  # closed inside the lock: the next run must find the file free
            try:
                for name, step in self.steps():
                    run_step(name, self.timed(name, step))
            except AlreadyDelivered:
                raise
            except Exception as exc:
                self.fail(exc)
                raise
            finally:
                self.close()
        return self.record

    def preview(self, limit: int) -> tuple[list[bytes], list[dict[str, Any]]]:
        """The first lines as the file would hold them, and (for a proof) the test profiles left out.
        Nothing is delivered or recorded; the warehouse is held as for a run."""
        with self.exclusive():
            try:
                self.check()
                self.build()
                self.extract()
                notes = (self.campaign.spec.header_note, self.campaign.spec.footer_note)
                lines = preview_lines(
                    self._open(),
                    self.plan,
                    self._encoder(),
                    notes,
                    self.seeds,
                    limit,
                    self.options.batch_size,
                )
                left_out = excluded_rows(self._open(), self.plan, limit) if self.options.test_profiles else []
            finally:
                self.close()
        return lines, left_out

    def timed(self, name: str, step: Callable[[], None]) -> Callable[[], None]:
        def timed_step() -> None:
            started = time.perf_counter()
            try:
                step()
            finally:
                self.record.step_seconds[name] = round(time.perf_counter() - started, 3)

        return timed_step

    def fail(self, exc: BaseException) -> None:
        """Record the run as failed (unless nothing had started, or it is a dry run). A run whose delivery
        had started stays settleable: the next attempt asks the destination whether its drop landed."""
        refused = isinstance(exc, ConfigError | DropInTheWay | FutureRunTime) and not isinstance(
            exc, RowsRefused
        )
        if self.options.dry_run or (refused and self.record.delivery_started_at is None):
            return
        self.record.status = FAILED
        self.record.finished_at = _now()
        self.record.message = scrub(str(exc))[:2000]
        try:
            history = History(self._open())
            history.ensure_tables()
            history.save_run(self.record)
        except Exception:  # the original error matters more than a failure to record it
            pass

    def close(self) -> None:
        if self._warehouse is not None:
            if self._plan is not None:
                drop_staging(self._warehouse, self._plan)
            self._warehouse.close()
            self._warehouse = None
        if not self.options.dry_run:
            shutil.rmtree(self.staging_dir, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------------------

    def _layout_of(self, campaign: Campaign, run_time: datetime) -> FileLayout:
        """The names a run of `campaign` at `run_time` writes (this run's, or a crashed one's)."""
        return campaign_layout(campaign, self.project.config, run_time)

    def _remove_own_strays(self) -> None:
        """Only the files this run id's own crashed attempt put (it never announced them): nothing of
        any other drop, whatever `on_existing` says, since no drop replaces it."""
        destination = self._destination()
        try:
            remove_with_sidecars(destination, self._own_strays, self.progress)
        finally:
            destination.close()

    def _code_path(self) -> Path:
        """The code fingerprint of the campaign's last build (see `_check_columns_before_build`)."""
        return self.project.directory / WORK_DIR / "builds" / f"{self.campaign.name}.code.json"

    def _built_code(self) -> dict[str, str] | None:
        try:
            return dict(json.loads(self._code_path().read_text()))
        except (OSError, ValueError):
            return None

    def _journal(self) -> Journal:
        return Journal(journal_path(self.project.dbt.target_info(), self.project.directory))

    def manifest(self) -> dict:
        return {
            "campaign": self.campaign.name,
            "run_id": self.run_id,
            "run_time": self.options.run_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "total_rows": sum(f.rows for f in self.staged),
            "files": [f.summary() for f in self.staged],
        }

    def _encrypt(self, staged: list[StagedFile]) -> list[StagedFile]:
        try:
            key_file = getattr(self.routing, "encryption_key", None) or ""
            key = load_public_key(resolve_directory(self.project.directory, key_file))
            return encrypt_staged(staged, key, self.staging_dir, self.layout.compressed, self.progress)
        except KeyProblem as exc:
            key_name = f"routing.{self.routing_name}.encryption_key"
            raise ConfigError([Finding(CONFIG_FILE, key_name, str(exc))]) from None

    def _encoder(self) -> LineEncoder:
        configuration = self.configuration
        encoder: LineEncoder
        if configuration.format == "fixed_width":
            plan = self.plan
            encoder = fixed_width_encoder(
                self.campaign, plan.labels, plan.types, configuration.newline, configuration.encoding
            )
        else:
            separator, newline = configuration.field_separator, configuration.newline
            encoder = LineEncoder(separator, newline, configuration.encoding)
        encoder.escape_formulas = configuration.escape_formulas  # the header row and the notes
        return encoder

    def _routing(self) -> Routing | None:
        return self.project.config.routing.get(self.routing_name)

    @property
    def routing(self) -> Routing:
        """The configuration's routing (check() refuses a run without one)."""
        routing = self._routing()
        if routing is None:
            raise ConfigError([_campaign_finding(self.campaign, "configuration", "no routing")])
        return routing

    @property
    def plan(self) -> ExtractPlan:
        if self._plan is None:
            raise RuntimeError("the extract step has not run")
        return self._plan

    def _destination(self) -> Destination:
        return open_destination(self.routing_name, self.routing, self.project.directory)

    def _open(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = open_warehouse(self.project.dbt.target_info(), self.project.directory)
        return self._warehouse

    @contextmanager
    def _open_history(self) -> Iterator[History]:
        """A short-lived connection, so that dbt can open the warehouse file afterwards."""
        warehouse = open_warehouse(self.project.dbt.target_info(), self.project.directory)
        try:
            history = History(warehouse)
            history.ensure_tables()
            yield history
        finally:
            warehouse.close()


def _campaign_finding(campaign: Campaign, key: str, reason: str) -> Finding:
    return Finding(campaign.yaml_file, campaign.key(key) if key else f"models.{campaign.name}", reason)


def _in_the_way_message(run_id: str, campaign: Campaign, found: list[Drop], where: str) -> str:
    """One line: which drop is in the way, where, and the ways on (I1)."""
    drops = "; ".join(
        f"{drop.run_id or 'a drop whose manifest names no run id'}"
        f"{'' if drop.recorded or drop.run_id is None else ' (not in this history)'}: "
        + ", ".join(drop.names)
        for drop in found
    )
    return (
        f"{run_id}: nothing delivered: a delivered drop of another run id is still at {where} under the "
        f"names this run would write ({drops}). Wait until the mail house has taken it (or remove it), "
        "give file_name a {run_time} placeholder or append_timestamp so each run has its own names, or "
        f"set on_existing: replace on configuration {campaign.spec.configuration} to replace it on "
        "purpose (the earlier run is then recorded superseded)"
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _safe(run_id: str) -> str:
    return run_id.replace("@", "_").replace(":", "")
