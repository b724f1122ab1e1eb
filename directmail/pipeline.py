"""One campaign run: check → build → extract → write → deliver → record.

The same steps run directly (`directmail run` without a Prefect API) or as Prefect tasks (flows/), so the
files, history and report are identical either way. Each step is a method; `execute()` runs them in order
and records a failed run with its reason.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from directmail.campaign import Campaign, check_against_config, check_columns
from directmail.config import CONFIG_FILE, Configuration, Routing, resolve_directory
from directmail.delivery import open_destination
from directmail.delivery.preflight import routing_findings
from directmail.encryption import KeyProblem, encrypt_file, load_public_key
from directmail.errors import (
    AlreadyDelivered,
    ConfigError,
    DeliveryError,
    DirectMailError,
    ExtractInvalid,
    Finding,
)
from directmail.extract import (
    DETAIL,
    EXPORTED,
    IDENTITY,
    REASON,
    AddressRule,
    ConsentRule,
    ExtractPlan,
    FrequencyRule,
    Rules,
    SuppressionRule,
    drop_staging,
    file_lines,
    plan_extract,
    reason_summary,
    stream_rows,
)
from directmail.history import DELIVERED, History, RunRecord
from directmail.layout import FileLayout
from directmail.locking import exclusive, lock_path
from directmail.project import NodeRef, Project
from directmail.schema import ExtractValidator, encodes
from directmail.secrets import scrub
from directmail.seedlist import MAX_SEED_ROWS, SeedRows, read_seed_rows
from directmail.textformat import LineEncoder
from directmail.warehouse import Warehouse, open_warehouse, query_labels
from directmail.writer import FileTexts, PartsWriter, StagedFile, write_checksum, write_manifest

STEPS = ("check", "build", "extract", "write", "deliver", "record")
WORK_DIR = ".directmail"
TEST_PROFILES_VAR = "directmail_test_profiles"


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
    return moment.astimezone(UTC).replace(microsecond=0)


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


Progress = Callable[[str], None]


class CampaignRun:
    def __init__(
        self, project: Project, campaign_name: str, options: RunOptions, progress: Progress | None = None
    ):
        self.project = project
        self.campaign: Campaign = project.campaign(campaign_name)
        self.options = options
        self.progress = progress or (lambda message: None)
        self.run_id = make_run_id(self.campaign.name, options.run_time)
        self.configuration: Configuration = project.config.configurations.get(
            self.campaign.spec.configuration
        )
        self.routing_name = self.configuration.routing if self.configuration else ""
        self.record = RunRecord(
            run_id=self.run_id,
            campaign=self.campaign.name,
            run_time=options.run_time.replace(tzinfo=None),
            status="running",
            started_at=_now(),
            configuration=self.campaign.spec.configuration,
        )
        self.layout = FileLayout(
            self.campaign.spec.file_name,
            options.run_time,
            append_timestamp=self.campaign.spec.append_timestamp,
            compressed=bool(self.configuration) and self.configuration.compression == "gzip",
            encrypted=getattr(self._routing(), "encryption_key", None) is not None,
        )
        self._compiled_sql: str | None = None
        self._warehouse: Warehouse | None = None
        self._plan: ExtractPlan | None = None
        self._relations: dict[str, str] = {}  # unique id → relation, where a test-profile build put it
        self._rows_per_part: int | None = None  # profile rows per part, once written (seed rows take room)
        self.seeds: SeedRows | None = None
        self.staged: list[StagedFile] = []
        self.staging_dir = (
            project.directory / WORK_DIR / ("dry-run" if options.dry_run else "staging") / _safe(self.run_id)
        )

    # -- steps -----------------------------------------------------------------------------------------

    def check(self) -> None:
        """Everything that can be refused before any work: status, configuration, routing, run id."""
        spec = self.campaign.spec
        if spec.status != "active":
            raise ConfigError(
                [_campaign_finding(self.campaign, "status", "the campaign is a draft; drafts never run")]
            )
        if findings := check_against_config(self.campaign, self.project.config):
            raise ConfigError(findings)
        routing = self._routing()
        if findings := routing_findings(self.routing_name, routing, self.project.directory):
            raise ConfigError(findings)
        with self._open_history() as history:
            previous = history.find(self.run_id)
        if previous is not None:
            self.record.attempt = previous.attempt + 1
            if previous.status == DELIVERED and not self.options.force and not self.options.dry_run:
                raise AlreadyDelivered(
                    f"{self.run_id} was already delivered at {previous.finished_at:%Y-%m-%d %H:%M:%S} UTC "
                    f"({previous.exported} rows); nothing delivered again (use --force to deliver again)"
                )
        self.record.destination = f"{self.routing_name} ({routing.type})"

    def build(self) -> None:
        """dbt build of the campaign and of every model or seed the runner reads, with their upstream."""
        run_vars: dict[str, Any] = {"run_time": self.options.run_time.strftime("%Y-%m-%d %H:%M:%S")}
        if self.options.test_profiles:
            run_vars[TEST_PROFILES_VAR] = True
            self._relations = self._test_profile_relations(run_vars)
        if self.options.skip_build:
            return
        upstream = [self.campaign.unique_id, self.project.consent_unique_id]
        upstream += [ref.unique_id for ref in self.project.sources.values()]
        select = ["+" + uid.split(".")[-1] for uid in upstream if uid]
        if self.campaign.spec.seed_list:
            select.append(self.campaign.spec.seed_list)
        self.progress(f"dbt build {' '.join(select)}")
        built = self.project.dbt.build(select, run_vars, with_tests=not self.options.test_profiles)
        self._compiled_sql = built.compiled.get(self.campaign.unique_id)
        if self.options.test_profiles:
            self._relations.update(built.relations)

    def _test_profile_relations(self, run_vars: dict[str, Any]) -> dict[str, str]:
        """Where a test-profile build puts each node; refused if it would overwrite the real tables."""
        manifest = self.project.dbt.parse(run_vars)
        relations = {
            uid: node.relation_name
            for uid, node in manifest.nodes.items()
            if getattr(node, "relation_name", None)
        }
        if relations.get(self.campaign.unique_id, self.campaign.relation) == self.campaign.relation:
            reason = (
                f"with the var {TEST_PROFILES_VAR}: true the project would build test profiles over the "
                "campaign's own table; give them their own schema (see the sample's "
                "macros/generate_schema_name.sql)"
            )
            raise ConfigError([Finding("dbt_project.yml", "macros.generate_schema_name", reason)])
        return relations

    def _relation(self, unique_id: str | None, relation: str) -> str:
        """The relation a node was built as in this run (a test-profile build puts it elsewhere)."""
        return self._relations.get(unique_id or "", relation)

    def _source_relation(self, ref: NodeRef) -> str:
        return self._relation(ref.unique_id, ref.relation)

    def extract(self) -> None:
        """Check the model's columns, then stage the ordered extract with every exclusion reason."""
        warehouse = self._open()
        campaign = replace(
            self.campaign, relation=self._relation(self.campaign.unique_id, self.campaign.relation)
        )
        if not warehouse.relation_exists(campaign.relation):
            raise ConfigError(
                [
                    _campaign_finding(
                        self.campaign, "", "the campaign table is not built (run without --skip-build)"
                    )
                ]
            )
        labels = query_labels(warehouse, self._compiled_sql or f"select * from {campaign.relation}")
        findings = check_columns(self.campaign, labels)
        if findings:
            raise ConfigError(findings)
        column_types = warehouse.describe(f"select * from {campaign.relation}")
        staging_name = f"extract__{self.campaign.name}" + (
            "__test_profiles" if self.options.test_profiles else ""
        )
        rules = self._rules()
        self._plan, sql = plan_extract(warehouse, campaign, column_types, rules, staging_name)
        self.progress("excluding, de-duplicating and ordering in the warehouse")
        History(warehouse).ensure_tables()
        warehouse.execute(sql)
        counts, self.record.exclusion_details = reason_summary(warehouse, self._plan)
        self._plan.exported = counts[EXPORTED]
        self.record.targeted = sum(counts.values())
        self._check_join_fanout(campaign.relation, rules)
        self.record.excluded = {reason: n for reason, n in counts.items() if reason != EXPORTED}
        self.record.holdout = counts["holdout"]
        self.record.duplicates_removed = counts["duplicate"]
        self.record.exported = counts[EXPORTED]
        self.seeds = self._read_seeds()

    def _check_join_fanout(self, relation: str, rules: Rules) -> None:
        """The addresses source is joined as is (one row per profile, no aggregation at scale): a source
        with several rows for a profile would multiply targeted rows, so the run stops before writing."""
        if rules.addresses is None:
            return
        rows = self._warehouse.query(f"select count(*) as n from {relation}")["n"][0].as_py()
        if self.record.targeted > rows:
            identity = rules.addresses.source.identity
            reason = (
                f"the addresses source has more than one row for some {identity}; it must have one row "
                "per profile"
            )
            raise ConfigError([Finding(CONFIG_FILE, "addresses", reason)])

    def _rules(self) -> Rules:
        config, spec, proof = self.project.config, self.campaign.spec, self.options.test_profiles
        consent = addresses = suppression = frequency = None
        if config.consent and self.project.consent_relation:
            relation = self._relation(self.project.consent_unique_id, self.project.consent_relation)
            consent = ConsentRule(relation, config.consent, self.configuration.marketing_action)
        if config.addresses and "addresses" in self.project.sources:
            addresses = AddressRule(
                self._source_relation(self.project.sources["addresses"]), config.addresses
            )
        if config.suppression and "suppression" in self.project.sources:
            suppression = SuppressionRule(
                self._source_relation(self.project.sources["suppression"]), config.suppression
            )
        cap = spec.frequency_cap or self.configuration.frequency_cap
        if cap is not None and not proof:  # a proof has no history to count
            since = self.options.run_time.strftime("%Y-%m-%d %H:%M:%S")
            frequency = FrequencyRule(cap, since, self.run_id)
        return Rules(consent, addresses, suppression, frequency, holdout=not proof)

    def _read_seeds(self) -> SeedRows | None:
        name = self.campaign.spec.seed_list
        if name is None:
            return None
        relation = self._source_relation(self.project.seeds[name])
        seeds = read_seed_rows(self._warehouse, relation, self.campaign, self._plan.labels, self._encoder())
        limit = min(MAX_SEED_ROWS, self.configuration.split_threshold - 1)
        if seeds.count > limit:
            reason = (
                f"seed list '{name}' has more than {limit} rows (at most {MAX_SEED_ROWS}, and fewer than "
                "the configuration's split_threshold, since every part holds them all)"
            )
            raise ConfigError([_campaign_finding(self.campaign, "seed_list", reason)])
        return seeds

    def write(self) -> None:
        """Stream, validate and write every part into the staging folder; fail before any delivery."""
        configuration, spec = self.configuration, self.campaign.spec
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        self.staging_dir.mkdir(parents=True)
        encoder = self._encoder()
        self._check_header_encodable(encoder)
        validator = ExtractValidator(self.campaign, self._plan.labels, configuration.encoding)
        if self.seeds is not None:
            validator.validate(self.seeds.batch)
        writer = PartsWriter(
            self.staging_dir,
            replace(self.layout, encrypted=False),
            encoder,
            FileTexts(
                self._plan.labels,
                spec.header_note,
                spec.footer_note,
                self.seeds.lines() if self.seeds else None,
            ),
            self.record.exported,
            configuration.split_threshold,
        )
        self.progress(f"writing {self.record.exported:,} rows")
        for batch in stream_rows(self._warehouse, self._plan, encoder, self.options.batch_size):
            validator.validate(batch)
            if validator.failure_count == 0:
                writer.write(file_lines(batch))
        staged = writer.close()
        self.record.seed_rows = writer.seed_rows * len(staged)
        self._rows_per_part = writer.split_threshold
        if validator.failure_count:
            shutil.rmtree(self.staging_dir, ignore_errors=True)
            raise ExtractInvalid(validator.describe_failures())
        if self.layout.encrypted:
            staged = self._encrypt(staged)
        self.staged = staged
        self.record.files = [f.summary() for f in staged]

    def deliver(self) -> None:
        """Data files (and checksums) first, the manifest last: its arrival means the drop is complete."""
        if self.options.dry_run:
            return
        previous = History(self._open()).find(self.run_id)
        if previous and previous.status == DELIVERED and not self.options.force:
            raise AlreadyDelivered(f"{self.run_id} was delivered by another run in the meantime")
        destination = open_destination(self.routing_name, self._routing(), self.project.directory)
        try:
            for staged in self.staged:
                self.progress(f"delivering {staged.name}")
                destination.put(staged.path, staged.name)
                if self.configuration.checksums:
                    destination.put(
                        write_checksum(self.staging_dir, staged), FileLayout.checksum_name(staged.name)
                    )
            if self.configuration.manifest:
                manifest = write_manifest(self.staging_dir, self.layout, self.manifest())
                destination.put(manifest, self.layout.manifest_name)
        except DirectMailError:
            raise
        except Exception as exc:  # a library error no destination anticipated: keep its reason, not secrets
            raise DeliveryError(
                scrub(f"delivery to {self.routing_name} failed: {type(exc).__name__}: {exc}")
            ) from None
        finally:
            destination.close()
        self.record.destination = f"{self.routing_name}: {destination.describe()}"

    def record_run(self) -> None:
        if self.options.dry_run:
            return
        self.record.status = DELIVERED
        self.record.finished_at = _now()
        history = History(self._open())
        history.replace_sends(self.run_id, self._sends_sql())
        history.replace_exclusions(self.run_id, self._exclusions_sql())
        history.save_run(self.record)

    # -- whole run --------------------------------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        """The run's steps in order, for runners that wrap each one (Prefect tasks)."""
        methods = [self.check, self.build, self.extract, self.write, self.deliver, self.record_run]
        return list(zip(STEPS, methods, strict=True))

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the warehouse for the whole run: a second run waits here rather than failing."""
        path = lock_path(self.project.dbt.target_info(), self.project.directory)
        with exclusive(path, self.progress):
            yield

    def execute(self) -> RunRecord:
        with self.exclusive():  # closed inside the lock: the next run must find the file free
            try:
                for name, step in self.steps():
                    with self.timed(name):
                        step()
            except AlreadyDelivered:
                raise
            except Exception as exc:
                self.fail(exc)
                raise
            finally:
                self.close()
        return self.record

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record.step_seconds[step] = round(time.perf_counter() - started, 3)

    def fail(self, exc: BaseException) -> None:
        """Record the run as failed (unless nothing had started, or it is a dry run)."""
        if self.options.dry_run or (isinstance(exc, ConfigError) and "build" not in self.record.step_seconds):
            return
        self.record.status = "failed"
        self.record.finished_at = _now()
        self.record.message = scrub(str(exc))[:2000]
        try:
            History(self._open()).ensure_tables()
            History(self._warehouse).save_run(self.record)
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

    def manifest(self) -> dict:
        return {
            "campaign": self.campaign.name,
            "run_id": self.run_id,
            "run_time": self.options.run_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "total_rows": sum(f.rows for f in self.staged),
            "files": [f.summary() for f in self.staged],
        }

    def preview_lines(self, limit: int) -> list[bytes]:
        """The first lines of the first file exactly as written (after extract())."""
        spec = self.campaign.spec
        encoder = self._encoder()
        lines = [encoder.note(spec.header_note)] if spec.header_note is not None else []
        lines.append(encoder.line(self._plan.labels))
        sql = self._plan.stream_sql(self._warehouse, encoder.separator, encoder.newline, limit)
        for batch in self._warehouse.stream(sql, self.options.batch_size):
            lines.append(encoder.lines(file_lines(batch)))
        if self.record.exported <= limit:  # the whole first file: its seed rows and footer too
            if self.seeds is not None and self.seeds.count:
                lines.append(encoder.lines(self.seeds.lines()))
            if spec.footer_note is not None:
                lines.append(encoder.note(spec.footer_note))
        return lines

    def excluded_rows(self, limit: int) -> list[dict[str, Any]]:
        """Targeted rows that are not exported, with their reason and detail (after extract())."""
        sql = (
            f"select {IDENTITY} as identity, {REASON} as reason, {DETAIL} as detail "
            f"from {self._plan.staging_table} where {REASON} <> '{EXPORTED}' "
            f"order by {IDENTITY} limit {int(limit)}"
        )
        return self._warehouse.query(sql).to_pylist()

    def _history_rows_sql(self, columns: list[str], where: str) -> str:
        """Staging rows as history rows: run id, campaign, identity, `columns`, the run's finish time."""
        d = self._warehouse.dialect
        finished_at = d.literal(self.record.finished_at.isoformat(sep=" "))
        return (
            f"select {d.literal(self.run_id)}, {d.literal(self.campaign.name)}, {IDENTITY}, "
            f"{', '.join(columns)}, cast({finished_at} as timestamp) "
            f"from {self._plan.staging_table} where {where}"
        )

    def _exclusions_sql(self) -> str:
        return self._history_rows_sql([REASON, DETAIL], f"{REASON} <> '{EXPORTED}'")

    def _sends_sql(self) -> str:
        d = self._warehouse.dialect
        names = [f.name for f in self.staged]
        part = f"cast(floor({d.insertion_position()} / {self._rows_per_part}) as integer)"
        branches = " ".join(f"when {i} then {d.literal(name)}" for i, name in enumerate(names))
        file_name = f"case when {REASON} = '{EXPORTED}' then case {part} {branches} end end"
        return self._history_rows_sql(
            [file_name, f"{REASON} = 'holdout'"], f"{REASON} in ('{EXPORTED}', 'holdout')"
        )

    def _encrypt(self, staged: list[StagedFile]) -> list[StagedFile]:
        """Replace each staged file by its .gpg; sizes and hashes become those of the delivered bytes."""
        try:
            key = load_public_key(resolve_directory(self.project.directory, self._routing().encryption_key))
            encrypted = []
            for plain in staged:
                self.progress(f"encrypting {plain.name} for {key.describe()}")
                name = plain.name + ".gpg"
                result = encrypt_file(plain.path, self.staging_dir / name, key, self.layout.compressed)
                plain.path.unlink()
                encrypted.append(StagedFile(name, result.path, plain.rows, result.bytes, result.sha256))
        except KeyProblem as exc:
            raise ConfigError(
                [Finding(CONFIG_FILE, f"routing.{self.routing_name}.encryption_key", str(exc))]
            ) from None
        return encrypted

    def _encoder(self) -> LineEncoder:
        configuration = self.configuration
        return LineEncoder(configuration.field_separator, configuration.newline, configuration.encoding)

    def _check_header_encodable(self, encoder: LineEncoder) -> None:
        """Notes and labels must fit the encoding too; they are not part of the validated rows."""
        spec = self.campaign.spec
        texts = {
            "header_note": spec.header_note,
            "footer_note": spec.footer_note,
            "": "".join(self._plan.labels),
        }
        for key, text in texts.items():
            if text is not None and not encodes(text, self.configuration.encoding):
                what = key or "a column label"
                reason = f"{what} cannot be written in {self.configuration.encoding}"
                raise ConfigError([_campaign_finding(self.campaign, key, reason)])

    def _routing(self) -> Routing | None:
        return self.project.config.routing.get(self.routing_name)

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


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _safe(run_id: str) -> str:
    return run_id.replace("@", "_").replace(":", "")
