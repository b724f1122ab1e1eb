"""`directmail` command line (contract 4). Exit codes: 0 ok, 1 failure or validation errors, 2 usage."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from directmail.errors import AlreadyDelivered, ConfigError, DirectMailError, Finding

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
console = Console()
errors = Console(stderr=True)


@dataclass
class Context:
    project_dir: Path
    target: str | None


@app.callback()
def main_options(
    ctx: typer.Context,
    project_dir: Annotated[Path, typer.Option(help="The dbt project holding direct_mail.yml.")] = Path("."),
    target: Annotated[str | None, typer.Option(help="dbt target (default: the profile's).")] = None,
) -> None:
    ctx.obj = Context(project_dir, target)


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
    from directmail.checks import check_project

    try:
        project = _load(ctx)
    except ConfigError as exc:
        _print_findings(exc.findings)
        raise typer.Exit(1) from None
    except DirectMailError as exc:
        _fail(exc)
    with errors.status("checking campaign columns"):
        findings = [*project.warnings, *check_project(project, campaigns or None)]
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
        schedule = deployment.schedules[0].schedule
        when = getattr(schedule, "cron", None) or getattr(schedule, "rrule", "").replace("\n", " ")
        console.print(
            f"deployment direct-mail-campaign/{deployment.name}: {when} ({schedule.timezone}) {where}",
            highlight=False,
            soft_wrap=True,
        )
    for item in retired:
        line = f"paused direct-mail-campaign/{item.name}: {item.reason}"
        console.print(line, highlight=False, soft_wrap=True)
    if not deployments:
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


@app.command("list")
def list_campaigns(ctx: typer.Context) -> None:
    """Campaigns with status, configuration, routing, schedule and last run."""
    from directmail.history import History
    from directmail.warehouse import open_warehouse

    try:
        project = _load(ctx)
        warehouse = open_warehouse(project.dbt.target_info(), project.directory)
        last_runs = History(warehouse).last_runs()
        warehouse.close()
    except DirectMailError as exc:
        _fail(exc)
    table = Table()
    for heading in ("campaign", "status", "configuration", "routing"):
        table.add_column(heading, no_wrap=True)  # names are copied into commands: never split them
    table.add_column("schedule")
    table.add_column("last run")
    for name, campaign in project.campaigns.items():
        spec = campaign.spec
        configuration = project.config.configurations.get(spec.configuration)
        schedule = ""
        if spec.schedule:
            schedule = (
                spec.schedule.at.isoformat()
                if spec.schedule.at
                else f"{spec.schedule.cron} ({spec.schedule.timezone})"
            )
        last = last_runs.get(name)
        last_text = (
            f"{last.status} {last.run_time:%Y-%m-%d %H:%M:%S}Z ({last.exported:,} rows)" if last else ""
        )
        table.add_row(
            name,
            spec.status,
            spec.configuration,
            configuration.routing if configuration else "?",
            schedule,
            last_text,
        )
    console.print(table)


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
    from directmail.pipeline import CampaignRun, RunOptions, parse_run_time

    try:
        project = _load(ctx)
        options = RunOptions(
            parse_run_time(run_time), dry_run=True, skip_build=skip_build, test_profiles=test_profiles
        )
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
    data = b"".join(lines)
    if raw:
        sys.stdout.buffer.write(data)
        return
    text = data.decode(run.configuration.encoding.replace("utf-8-sig", "utf-8"))
    sys.stdout.write(text.replace("\r\n", "\n"))


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
) -> None:
    """Build, extract, validate, write, deliver and record one campaign run."""
    from directmail.pipeline import parse_run_time
    from directmail.report import to_rich

    try:
        moment = parse_run_time(run_time)
    except ValueError as exc:
        errors.print(f"error: --run-time: {exc}", style="red")
        raise typer.Exit(2) from None
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
            )
            if record.status == "skipped":
                raise AlreadyDelivered(record.message)
        else:
            record = _run_directly(ctx, campaign, moment, dry_run, force, skip_build)
    except AlreadyDelivered as exc:
        console.print(f"nothing to do: {exc}", highlight=False)
        return
    except DirectMailError as exc:
        _fail(exc)
    console.print(to_rich(record))
    if dry_run:
        console.print(
            "dry run: nothing delivered or recorded; files are in .directmail/dry-run/", highlight=False
        )


def _run_directly(ctx: typer.Context, campaign: str, moment, dry_run: bool, force: bool, skip_build: bool):
    from directmail.pipeline import CampaignRun, RunOptions

    project = _load(ctx)
    options = RunOptions(moment, dry_run=dry_run, force=force, skip_build=skip_build)
    with errors.status(f"{campaign}: starting") as status:
        run = CampaignRun(project, campaign, options, progress=lambda m: status.update(f"{campaign}: {m}"))
        return run.execute()


@app.command()
def report(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Argument()] = None,
    run: Annotated[str | None, typer.Option("--run", help="A run id.")] = None,
    limit: Annotated[int, typer.Option(help="Runs to list.")] = 20,
) -> None:
    """The latest run's report (of a campaign, or a given run id), and the runs before it."""
    from directmail.builder import DbtProject
    from directmail.history import History
    from directmail.report import to_rich
    from directmail.warehouse import open_warehouse

    try:
        dbt = DbtProject(ctx.obj.project_dir, ctx.obj.target)
        warehouse = open_warehouse(dbt.target_info(), dbt.project_dir)
        records = History(warehouse).runs(campaign, run, limit)
        warehouse.close()
    except DirectMailError as exc:
        _fail(exc)
    if not records:
        errors.print("no runs recorded" + (f" for {campaign or run}" if campaign or run else ""))
        raise typer.Exit(1)
    console.print(to_rich(records[0]))
    if len(records) > 1:
        table = Table(
            "run id", "status", "targeted", "exported", "finished", title="earlier runs", title_justify="left"
        )
        for record in records[1:]:
            finished = f"{record.finished_at:%Y-%m-%d %H:%M:%S}" if record.finished_at else ""
            table.add_row(
                record.run_id, record.status, f"{record.targeted:,}", f"{record.exported:,}", finished
            )
        console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
