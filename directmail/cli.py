"""`directmail` command line (contract 4). Exit codes: 0 ok, 1 failure or validation errors, 2 usage."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.table import Table

from directmail.errors import AlreadyDelivered, ConfigError, DirectMailError, Finding

if TYPE_CHECKING:  # imported where used: `--help` stays fast
    from directmail.builder import DbtProject, TargetInfo
    from directmail.campaign import Schedule
    from directmail.history import RunRecord
    from directmail.pipeline import RunOptions

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
console = Console()
errors = Console(stderr=True)


@dataclass
class Context:
    project_dir: Path
    target: str | None


# `make ui` writes the API URL of the Prefect server it starts here (.directmail/ is git-ignored).
PREFECT_URL_FILE = Path(".directmail") / "prefect-api-url"
_PREFECT_COMMANDS = {"run", "serve", "deploy"}


@app.callback()
def main_options(
    ctx: typer.Context,
    project_dir: Annotated[Path, typer.Option(help="The dbt project holding direct_mail.yml.")] = Path("."),
    target: Annotated[str | None, typer.Option(help="dbt target (default: the profile's).")] = None,
) -> None:
    ctx.obj = Context(project_dir, target)
    if ctx.invoked_subcommand in _PREFECT_COMMANDS:
        url = use_local_prefect_server(project_dir)
        if url:
            errors.print(
                f"runs show in the Prefect UI at {url.removesuffix('/api')} (server from `make ui`, "
                f"PREFECT_API_URL={url})",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def use_local_prefect_server(project_dir: Path) -> str | None:
    """Export PREFECT_API_URL when `make ui`'s server for this project is up; return it, or None.

    Without it, a run started next to an open UI would run directly and never show there. Only when
    PREFECT_API_URL is unset, the file exists and the server answers /health within half a second: a
    stale file (the UI was stopped) is ignored silently, and no Prefect import is paid for the check.
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    try:
        url = (project_dir / PREFECT_URL_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not url.startswith(("http://", "https://")):
        return None
    import http.client  # here: the read commands start without them
    import urllib.request

    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the server is local
    try:
        with no_proxy.open(url.rstrip("/") + "/health", timeout=0.5) as response:
            if response.status != 200:
                return None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    os.environ["PREFECT_API_URL"] = url
    return url


def _load(ctx: typer.Context):
    from directmail.project import load_project

    with errors.status("reading the project"):
        project = load_project(ctx.obj.project_dir, ctx.obj.target)
    if _uses_prefect_secrets(project):
        from flows import secret_blocks  # noqa: F401  registers the ${prefect:block} resolver
    return project


def _uses_prefect_secrets(project) -> bool:
    from directmail.secrets import PREFECT

    return any(
        secret.scheme == PREFECT
        for routing in project.config.routing.values()
        for _, secret in routing.secrets()
    )


def _print_findings(findings: list[Finding]) -> None:
    for finding in findings:
        style = "red" if finding.level == "error" else "yellow"
        errors.print(str(finding), style=style, markup=False, highlight=False, soft_wrap=True)


def _fail(exc: Exception) -> None:
    if isinstance(exc, ConfigError):
        _print_findings(exc.findings)
    else:
        from directmail.secrets import scrub

        errors.print(f"error: {scrub(str(exc))}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def validate(
    ctx: typer.Context,
    campaigns: Annotated[list[str] | None, typer.Argument(help="Campaigns to check (default: all).")] = None,
    check_connections: Annotated[
        bool, typer.Option(help="Also connect to every active routing and write (then remove) a probe file.")
    ] = False,
) -> None:
    """Check direct_mail.yml and the campaigns; one line per finding."""
    try:
        project = _load(ctx)
    except ConfigError as exc:
        _print_findings(exc.findings)
        raise typer.Exit(1) from None
    except DirectMailError as exc:
        _fail(exc)
    from directmail.checks import check_project  # after loading: YAML errors are reported at once

    with errors.status("checking campaign columns"):
        # Every campaign's own findings (or the named ones'): a broken campaign is reported here, while
        # `validate` of another campaign, and its runs, are not held up by it.
        findings = [*project.findings(campaigns or None), *check_project(project, campaigns or None)]
    _print_findings(findings)
    failed = any(f.level == "error" for f in findings)
    if check_connections:
        failed = not _print_connection_checks(project) or failed
    if failed:
        raise typer.Exit(1)
    checked = campaigns or list(project.campaigns)
    console.print(f"ok: {len(checked)} campaign(s) valid: {', '.join(checked)}", highlight=False)


def _print_connection_checks(project) -> bool:
    from directmail.checks import check_connections

    with errors.status("connecting to each active routing"):
        results = check_connections(project)
    for result in results:
        line = f"{'ok' if result.ok else 'failed'}: routing {result.routing} ({result.type}): {result.detail}"
        (console if result.ok else errors).print(
            line, style=None if result.ok else "red", markup=False, highlight=False, soft_wrap=True
        )
    return all(r.ok for r in results)


def _prefect_api_url() -> str:
    """Deployments need a Prefect server the operators can see; the temporary one would vanish."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        errors.print(
            "error: no Prefect server configured: start one with `make ui`, then "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api (or point it at your team's server)",
            style="red",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    return url


def _print_registration(deployments, retired, where: str) -> None:
    for deployment in deployments:
        if deployment.schedules:
            schedule = deployment.schedules[0].schedule
            when = getattr(schedule, "cron", None) or getattr(schedule, "rrule", "").replace("\n", " ")
            when = f"{when} ({schedule.timezone})"
        else:
            when = "no schedule, run from the UI"
        console.print(
            f"deployment {deployment.flow_name}/{deployment.name}: {when} {where}",
            highlight=False,
            soft_wrap=True,
        )
    for item in retired:
        line = f"paused {item.flow}/{item.name}: {item.reason}"
        console.print(line, highlight=False, soft_wrap=True)
    if not any(deployment.flow_name == "direct-mail-campaign" for deployment in deployments):
        console.print("no active campaign has a schedule: nothing to serve", highlight=False)


@app.command()
def serve(ctx: typer.Context) -> None:
    """Run every active, scheduled campaign as a Prefect deployment in this process (until Ctrl-C)."""
    url = _prefect_api_url()
    try:
        project = _load(ctx)
    except DirectMailError as exc:
        _fail(exc)
    from flows.serve import register, serve_deployments

    deployments, retired = register(project)
    _print_registration(deployments, retired, f"served from here via {url}")
    serve_deployments(deployments)


@app.command()
def deploy(
    ctx: typer.Context,
    work_pool: Annotated[str, typer.Option(help="Prefect work pool whose workers will run the campaigns.")],
) -> None:
    """Register every active, scheduled campaign as a deployment for a work pool's workers."""
    url = _prefect_api_url()
    try:
        project = _load(ctx)
    except DirectMailError as exc:
        _fail(exc)
    from flows.serve import register

    deployments, retired = register(project, work_pool)
    _print_registration(deployments, retired, f"on work pool {work_pool} at {url}")


JSON_HELP = "Print one JSON document on stdout instead (keys in docs/cli.md)."


@app.command("list")
def list_campaigns(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Campaigns with status, configuration, routing, schedule and last run."""
    from directmail.history import History
    from directmail.warehouse import WarehouseBusy

    try:
        project = _load(ctx)
    except DirectMailError as exc:
        _fail(exc)
    busy = False
    try:
        last_runs = _read_history(project.dbt, History.last_runs)
    except WarehouseBusy as exc:
        errors.print(f"{exc} (last runs not shown)", markup=False, highlight=False, soft_wrap=True)
        last_runs, busy = {}, True
    except DirectMailError as exc:
        _fail(exc)
    rows = []
    for name in sorted({*project.campaigns, *project.campaign_findings}):
        campaign = project.campaigns.get(name)
        last = last_runs.get(name)
        row = {"campaign": name, "status": "invalid", "configuration": "", "routing": "", "schedule": ""}
        if campaign is not None:
            spec = campaign.spec
            configuration = project.config.configurations.get(spec.configuration)
            row |= {
                "status": spec.status,
                "configuration": spec.configuration,
                "routing": configuration.routing if configuration else "?",
                "schedule": _schedule_text(spec.schedule),
            }
        row["last run"] = f"{last.run_id} {last.status}, {last.exported:,} rows" if last else ""
        rows.append(row)
    if as_json:
        _print_json({"campaigns": _campaigns_json(project, last_runs), "last_runs_read": not busy})
    else:
        _print_records(rows, wrap={"schedule"})
    for name in project.invalid_campaigns:
        errors.print(
            f"{name} is invalid: `directmail validate {name}` says why", markup=False, highlight=False
        )


def _campaigns_json(project, last_runs: dict) -> list[dict]:
    """`list --json`: every campaign (an invalid one with status `invalid` and nulls) and its last run."""
    from directmail.report import utc_iso

    campaigns = []
    for name in sorted({*project.campaigns, *project.campaign_findings}):
        campaign = project.campaigns.get(name)
        spec = campaign.spec if campaign is not None else None
        configuration = project.config.configurations.get(spec.configuration) if spec else None
        schedule = spec.schedule if spec else None
        last = last_runs.get(name)
        campaigns.append(
            {
                "campaign": name,
                "status": spec.status if spec else "invalid",
                "configuration": spec.configuration if spec else None,
                "routing": configuration.routing if configuration else None,
                "schedule": None
                if schedule is None
                else {
                    "cron": schedule.cron,
                    "timezone": schedule.timezone,
                    "at": schedule.at.isoformat() if schedule.at else None,
                },
                "last_run": None
                if last is None
                else {
                    "run_id": last.run_id,
                    "status": last.status,
                    "run_time": utc_iso(last.run_time),
                    "finished_at": utc_iso(last.finished_at),
                    "exported": last.exported,
                },
            }
        )
    return campaigns


def _print_json(document: dict) -> None:
    """The whole of stdout: one JSON document (UTF-8, not ASCII-escaped), ending with a newline."""
    import json

    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


def _schedule_text(schedule: Schedule | None) -> str:
    if schedule is None:
        return ""
    return schedule.at.isoformat() if schedule.at else f"{schedule.cron} ({schedule.timezone})"


def _print_records(rows: list[dict[str, str]], wrap: AbstractSet[str] = frozenset()) -> None:
    """A table on a terminal wide enough for it; otherwise (narrow, or piped) one `key: value` block per
    record, nothing cut or folded: names and run ids are copied from here into commands."""
    if not rows:
        return
    table = Table()
    for heading in rows[0]:
        table.add_column(heading, no_wrap=heading not in wrap)
    for row in rows:
        table.add_row(*row.values())
    if _fits(table):
        console.print(table)
        return
    blocks = ["\n".join(f"{key}: {value}" for key, value in row.items() if value) for row in rows]
    typer.echo("\n\n".join(blocks))


def _fits(renderable: RenderableType) -> bool:
    """Stdout is a terminal as wide as the renderable's natural width (a table would squeeze to fit)."""
    if not console.is_terminal:
        return False
    natural = console.measure(renderable, options=console.options.update_width(10_000))
    return natural.maximum <= console.width


T = TypeVar("T")


def _read_history(dbt: DbtProject, read: Callable[..., T]) -> T:
    """`read(History)` on the warehouse opened read-only, between runs, and always closed: a side command
    never creates the file, never waits, and never makes a starting run fail on DuckDB's lock."""
    from directmail.history import History
    from directmail.warehouse import open_warehouse

    target = dbt.target_info()
    with _between_runs(target, dbt.project_dir):
        warehouse = open_warehouse(target, dbt.project_dir, read_only=True)
        try:
            return read(History(warehouse))
        finally:
            warehouse.close()


@contextmanager
def _between_runs(target: TargetInfo, project_dir: Path) -> Iterator[None]:
    """Hold the run lock shared while reading, or raise WarehouseBusy at once if a run holds it."""
    from directmail.locking import lock_path
    from directmail.warehouse import WarehouseBusy, warehouse_file

    database = warehouse_file(target, project_dir)
    if database is None or not database.exists():  # nothing to read, and nothing to create
        yield
        return
    with lock_path(target, project_dir).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WarehouseBusy("warehouse busy: a run is in progress; try again when it ends") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@app.command()
def preview(
    ctx: typer.Context,
    campaign: str,
    limit: Annotated[int, typer.Option(min=0, help="Data rows to show.")] = 20,
    run_time: Annotated[str | None, typer.Option(help="ISO 8601 run time (default now).")] = None,
    skip_build: Annotated[bool, typer.Option(help="Use the tables as built.")] = False,
    raw: Annotated[bool, typer.Option(help="Write the file's exact bytes to stdout.")] = False,
    test_profiles: Annotated[
        bool,
        typer.Option(
            "--test-profiles",
            help="A proof: render the campaign for the project's test profiles (a seed), in a schema of "
            "their own; no holdout or frequency cap; history untouched.",
        ),
    ] = False,
) -> None:
    """Rows exactly as the file would hold them; nothing is delivered or recorded."""
    from directmail.pipeline import CampaignRun, RunOptions

    moment = _run_time_option(run_time)
    try:
        project = _load(ctx)
        options = RunOptions(moment, dry_run=True, skip_build=skip_build, test_profiles=test_profiles)
        run = CampaignRun(project, campaign, options, progress=lambda m: None)
        with errors.status("building and extracting"):
            lines, excluded = run.preview(limit)
    except (DirectMailError, ValueError) as exc:
        _fail(exc)
    for row in excluded:  # on stderr, so that stdout stays the file's bytes
        detail = f" ({row['detail']})" if row["detail"] else ""
        errors.print(
            f"test profile {row['identity']} not in the file: {row['reason']}{detail}", highlight=False
        )
    if note := preview_note(run.record, test_profiles, len(excluded)):
        errors.print(note, highlight=False, markup=False)
    data = b"".join(lines)
    if raw:
        sys.stdout.buffer.write(data)
        return
    text = data.decode(run.configuration.encoding.replace("utf-8-sig", "utf-8"))
    sys.stdout.write(text.replace("\r\n", "\n"))


def preview_note(record: RunRecord, test_profiles: bool, left_out: int) -> str | None:
    """Why a preview shows no data row (None when it shows some): the counts a run at that time would
    record, or, for a proof, that no persona made it in."""
    if record.exported:
        return None
    if test_profiles:
        if left_out:
            return f"no test profile is in the proof: each of the {left_out} was left out (above)"
        return (
            "no test profile is in the proof: the campaign's model selects none of the project's test "
            "profiles (see docs/campaigns.md, proofs for test profiles)"
        )
    counts = [(reason, n) for reason, n in record.excluded.items() if n]  # the holdout is one of them
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in counts) or "nothing"
    return (
        f"{record.run_id}: no row to export ({record.targeted:,} targeted; excluded: {reasons}); only the "
        f"notes, header and seed rows are shown. `directmail explain {record.campaign} IDENTITY` says why "
        "for one profile; `--run-time` previews another run time"
    )


@app.command()
def run(
    ctx: typer.Context,
    campaign: str,
    run_time: Annotated[
        str | None, typer.Option(help="ISO 8601 run time; fixes the run id (default now).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Build, validate and write to .directmail/dry-run only.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Deliver again a run id that was already delivered.")] = False,
    skip_build: Annotated[bool, typer.Option(help="Do not run dbt; use the tables as built.")] = False,
    allow_future: Annotated[
        bool, typer.Option(help="Run a run time more than 24 h after now (refused otherwise).")
    ] = False,
) -> None:
    """Build, extract, validate, write, deliver and record one campaign run."""
    from directmail.pipeline import RunOptions
    from directmail.report import to_lines, to_rich

    moment = _run_time_option(run_time)
    try:
        if os.environ.get("PREFECT_API_URL"):
            from flows.campaign_flow import run_campaign_flow

            record = run_campaign_flow(
                campaign=campaign,
                run_time=moment.isoformat(),
                project_dir=str(ctx.obj.project_dir.resolve()),
                target=ctx.obj.target,
                dry_run=dry_run,
                force=force,
                skip_build=skip_build,
                allow_future=allow_future,
            )
            if record.status == "skipped":
                raise AlreadyDelivered(record.message)
        else:
            options = RunOptions(
                moment, dry_run=dry_run, force=force, skip_build=skip_build, allow_future=allow_future
            )
            record = _run_directly(ctx, campaign, options)
    except AlreadyDelivered as exc:
        console.print(f"nothing to do: {exc}", highlight=False)
        return
    except DirectMailError as exc:
        _fail(exc)
    shown = to_rich(record)
    if _fits(shown):
        console.print(shown)
    else:  # piped, or a terminal narrower than the tables: `key: value` lines, nothing wrapped or cut
        typer.echo("\n".join(to_lines(record)))
    if dry_run:
        console.print(
            "dry run: nothing delivered or recorded; files are in .directmail/dry-run/", highlight=False
        )


def _run_time_option(value: str | None) -> datetime:
    """--run-time, or now; a value that is not ISO 8601 is a usage error (exit 2)."""
    from directmail.pipeline import parse_run_time

    try:
        return parse_run_time(value)
    except ValueError as exc:
        errors.print(f"error: --run-time: {exc}", style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None


def _run_directly(ctx: typer.Context, campaign: str, options: RunOptions):
    from directmail.pipeline import CampaignRun

    project = _load(ctx)
    with errors.status(f"{campaign}: starting") as status:
        run = CampaignRun(project, campaign, options, progress=lambda m: status.update(f"{campaign}: {m}"))
        return run.execute()


@app.command()
def report(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Argument()] = None,
    run: Annotated[str | None, typer.Option("--run", help="A run id.")] = None,
    limit: Annotated[int, typer.Option(help="Runs to list.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """The latest run's report (of a campaign, or a given run id), and the runs before it."""
    from directmail.builder import DbtProject
    from directmail.report import earlier_run_line, to_json, to_lines, to_rich

    try:
        dbt = DbtProject(ctx.obj.project_dir, ctx.obj.target)
        records = _read_history(dbt, lambda history: history.runs(campaign, run, limit))
    except DirectMailError as exc:
        _fail(exc)
    if not records:
        errors.print("no runs recorded" + (f" for {campaign or run}" if campaign or run else ""))
        raise typer.Exit(1)
    if as_json:
        _print_json({"run": to_json(records[0]), "earlier_runs": [to_json(r) for r in records[1:]]})
        return
    shown: list[RenderableType] = [to_rich(records[0])]
    if len(records) > 1:
        table = Table(title="earlier runs", title_justify="left")
        for heading in ("run id", "status", "targeted", "exported", "finished"):
            table.add_column(heading, no_wrap=True)
        for record in records[1:]:
            finished = f"{record.finished_at:%Y-%m-%d %H:%M:%S}" if record.finished_at else ""
            table.add_row(
                record.run_id, record.status, f"{record.targeted:,}", f"{record.exported:,}", finished
            )
        shown.append(table)
    if all(_fits(part) for part in shown):
        for part in shown:
            console.print(part)
        return
    lines = to_lines(records[0])
    if len(records) > 1:
        lines += ["", "earlier runs:", *(earlier_run_line(record) for record in records[1:])]
    typer.echo("\n".join(lines))


@app.command()
def diff(
    ctx: typer.Context,
    campaign: str,
    run_a: Annotated[
        str | None, typer.Argument(help="The earlier run id (default: the committed run before RUN_B).")
    ] = None,
    run_b: Annotated[
        str | None, typer.Argument(help="The later run id (default: the latest committed run).")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=0, help="Profiles listed per direction (counts are complete).")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Who was added or dropped between two committed runs of a campaign, and why."""
    from directmail.builder import DbtProject
    from directmail.diff import choose_runs, diff_runs
    from directmail.diff_report import to_json, to_lines, to_rich

    def compare(history):
        a, b = choose_runs(history.warehouse, campaign, run_a, run_b)
        return diff_runs(history.warehouse, campaign, a, b, limit)

    try:
        result = _read_history(DbtProject(ctx.obj.project_dir, ctx.obj.target), compare)
    except DirectMailError as exc:
        _fail(exc)
    if as_json:
        _print_json(to_json(result))
        return
    shown = to_rich(result)
    if _fits(shown):
        console.print(shown)
        return
    typer.echo("\n".join(to_lines(result)))


@app.command()
def explain(
    ctx: typer.Context,
    campaign: str,
    identity: Annotated[str, typer.Argument(help="The profile's identity value, as in direct_mail.sends.")],
    run: Annotated[
        str | None, typer.Option("--run", help="A run id (default: the latest committed run).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Why one profile was mailed, held out or excluded in a run, or that it was not in its audience."""
    from directmail.builder import DbtProject
    from directmail.explain import explain as explain_profile

    try:
        dbt = DbtProject(ctx.obj.project_dir, ctx.obj.target)
        result = _read_history(
            dbt, lambda history: explain_profile(history.warehouse, campaign, identity, run)
        )
    except DirectMailError as exc:
        _fail(exc)
    if as_json:
        _print_json(result.as_dict())
        return
    typer.echo(result.line)


# -- returns: a mail house's return files ------------------------------------------------------------

returns_app = typer.Typer(no_args_is_help=True, help="A mail house's return files → direct_mail.returns.")
app.add_typer(returns_app, name="returns")


def _returns_target(ctx: typer.Context) -> tuple[Path, TargetInfo]:
    from directmail.builder import DbtProject

    dbt = DbtProject(ctx.obj.project_dir, ctx.obj.target)
    return dbt.project_dir, dbt.target_info()


StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Refuse a file whole when an identity was never mailed, differs from a mailed one only in "
        "letter case, or holds a control or invisible character (else stored and reported).",
    ),
]


def _print_out(lines: list[str]) -> None:
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@returns_app.command("ingest")
def returns_ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A return file: CSV identity,reason[,returned_at].")],
    strict: StrictOption = False,
) -> None:
    """Store one return file; a file with any bad row is refused whole (exit 1, nothing stored).

    Returns whose identity likely suppresses nobody are counted after the line of what was stored."""
    from directmail.returnfile import ReturnFileRefused
    from directmail.returns import ingest_file

    try:
        project_dir, target = _returns_target(ctx)
        with errors.status(f"ingesting {file.name}") as status:
            ingested = ingest_file(file, target, project_dir, progress=status.update, strict=strict)
    except ReturnFileRefused as exc:
        _print_refusal(exc.lines())
        raise typer.Exit(1) from None
    except DirectMailError as exc:
        _fail(exc)
    _print_out([f"ingested {ingested.describe()}", *ingested.doubt_lines()])


@returns_app.command("pull")
def returns_pull(
    ctx: typer.Context,
    routing: Annotated[str, typer.Option(help="The routing whose returns/ folder to read.")],
    strict: StrictOption = False,
) -> None:
    """Ingest each file of a routing's returns/ folder not ingested before; each file all or nothing."""
    from directmail.config import load_config
    from directmail.returns import pull_returns

    try:
        project_dir, target = _returns_target(ctx)
        config = load_config(project_dir)
        if _uses_prefect_secrets(SimpleNamespace(config=config)):
            from flows import secret_blocks  # noqa: F401  registers the ${prefect:block} resolver
        with errors.status(f"pulling returns from {routing}") as status:
            report = pull_returns(config, routing, target, project_dir, progress=status.update, strict=strict)
    except DirectMailError as exc:
        _fail(exc)
    _print_out(report.lines())
    _print_refusal(report.refusal_lines())
    if not report.ok:
        raise typer.Exit(1)


# -- addresses: validation into direct_mail.address_validations ---------------------------------------

addresses_app = typer.Typer(
    no_args_is_help=True, help="Address validation → direct_mail.address_validations (runs do it too)."
)
app.add_typer(addresses_app, name="addresses")


@addresses_app.command("validate")
def addresses_validate(
    ctx: typer.Context,
    everything: Annotated[
        bool, typer.Option("--all", help="Re-validate every address, not only new or changed ones.")
    ] = False,
) -> None:
    """dbt build of `addresses.validate`'s model, then its new or changed addresses validated (for a
    plain `dbt build` afterwards; `run` and `preview` do this themselves)."""
    from directmail.address_validations import CONFIG_KEY, build_and_validate
    from directmail.builder import DbtProject
    from directmail.config import CONFIG_FILE, load_config
    from directmail.locking import warehouse_lock

    try:
        dbt = DbtProject(ctx.obj.project_dir, ctx.obj.target)
        config = load_config(dbt.project_dir)
        model = config.addresses.validate_model if config.addresses else None
        if model is None:
            reason = "not set: name the model of addresses to validate (e.g. int_addresses_collected)"
            raise ConfigError([Finding(CONFIG_FILE, CONFIG_KEY, reason)])
        target = dbt.target_info()
        with (
            errors.status("validating addresses") as status,
            warehouse_lock(target, dbt.project_dir, status.update),
        ):
            result = build_and_validate(dbt, model, {}, everything=everything, progress=status.update)
    except DirectMailError as exc:
        _fail(exc)
    console.print(result.report.describe(), markup=False, highlight=False, soft_wrap=True)


def _print_refusal(lines: list[str]) -> None:
    for line in lines:
        errors.print(line, style="red", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
