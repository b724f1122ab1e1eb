"""Prefect flow for one campaign run: a thin wrapper, each pipeline step a task, the report an artifact.

The run lifecycle is `CampaignRun.execute()`, the same one `directmail run` uses without Prefect; the flow
only hands it a step runner that makes each step a task (delivery retried when the server was unreachable).

Run it from the CLI with a Prefect API configured (`PREFECT_API_URL=… directmail run CAMPAIGN`), or
directly: `python -m flows.campaign_flow winter_catalog --run-time 2026-11-23T06:00:00Z`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from directmail.diff import since_previous
from directmail.diff_report import to_markdown as changes_markdown
from directmail.errors import AlreadyDelivered, DeliveryError, Settled
from directmail.history import DELIVERED, EMPTY, RunRecord
from directmail.locking import exclusive
from directmail.pipeline import WORK_DIR, CampaignRun, RunOptions, parse_run_time
from directmail.project import Project, load_project
from directmail.reading import read_warehouse
from directmail.report import to_markdown
from directmail.secrets import scrub
from flows import secret_blocks  # noqa: F401  registers ${prefect:block} secret references

SKIPPED = "skipped"
RETRIED_STEPS = {"deliver": 2}


@task(cache_policy=NO_CACHE, task_run_name="{name}")
def run_step(name: str, step: Callable[[], None]) -> None:
    step()


@flow(name="direct-mail-campaign", flow_run_name="{campaign} @ {run_time}", log_prints=True)
def run_campaign_flow(
    campaign: str,
    run_time: str | None = None,
    project_dir: str = ".",
    target: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    skip_build: bool = False,
    allow_future: bool = False,
) -> RunRecord:
    logger = get_run_logger()
    # dbt is not thread-safe: runs in one serve process (threads) take turns for the project as a whole,
    # and CampaignRun.exclusive() makes runs in other processes take turns for the warehouse.
    with exclusive(Path(project_dir) / WORK_DIR / "flow.lock", logger.info):
        project = load_project(Path(project_dir), target)
        options = RunOptions(
            parse_run_time(run_time or _scheduled_time()),
            dry_run=dry_run,
            force=force,
            skip_build=skip_build,
            allow_future=allow_future,
        )
        run = CampaignRun(project, campaign, options, progress=logger.info)
        try:
            record = run.execute(_as_task)
        except AlreadyDelivered as exc:
            logger.info(str(exc))
            run.record.message = str(exc)
            if not isinstance(exc, Settled):  # a settled run is delivered: its report is published
                run.record.status = SKIPPED
                return run.record
            record = run.record
        except Exception:
            _publish(run.record)
            raise
    _publish(record)
    if record.status in (DELIVERED, EMPTY) and not dry_run:
        _publish_changes(project, record)
    return record


def _as_task(name: str, step: Callable[[], None]) -> None:
    """Each step a task run in the UI; only delivery is retried, and only for an unreachable server."""
    task_run = run_step.with_options(
        retries=RETRIED_STEPS.get(name, 0),
        retry_delay_seconds=30,
        retry_condition_fn=_worth_retrying,
    )
    task_run(name, step)


def _scheduled_time() -> str | None:
    """A deployment's run uses its scheduled slot as run time: a retried or duplicated slot has one run id."""
    from prefect.runtime import flow_run

    scheduled = flow_run.scheduled_start_time
    return scheduled.isoformat() if scheduled is not None else None


def _worth_retrying(task, task_run, state) -> bool:
    """Retry delivery later only when the server was unreachable; a refused login fails at once."""
    try:
        state.result()
    except DeliveryError as exc:
        return exc.transient
    except Exception:
        return False
    return False


def _publish(record: RunRecord) -> None:
    create_markdown_artifact(
        to_markdown(record), key=artifact_key(record.campaign), description=f"Direct mail run {record.run_id}"
    )


CHANGES_LISTED = 20  # profiles listed per direction in the artifact; its counts are complete


def _publish_changes(project: Project, record: RunRecord) -> None:
    """The artifact `direct-mail-<campaign>-changes`: who was added or dropped since the previous
    committed run, and why. The drop is delivered already: a failure here is logged, never raised."""
    logger = get_run_logger()
    try:
        diff = read_warehouse(
            project.dbt, lambda w: since_previous(w, record.campaign, record.run_id, CHANGES_LISTED)
        )
    except Exception as exc:
        logger.warning(f"changes since the previous run not published: {scrub(str(exc))}")
        return
    if diff is None:
        title = f"# Changes since the previous run: `{record.campaign}`"
        markdown = f"{title}\n\n`{record.run_id}` is its first committed run: nothing to compare."
    else:
        markdown = changes_markdown(diff)
    create_markdown_artifact(
        markdown, key=artifact_key(record.campaign, "changes"), description=f"Changes in {record.run_id}"
    )


def artifact_key(campaign: str, suffix: str = "") -> str:
    """`direct-mail-<campaign>[-<suffix>]`: artifact keys allow lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(filter(None, ["direct-mail", campaign, suffix])).lower())


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one direct mail campaign as a Prefect flow.")
    parser.add_argument("campaign")
    parser.add_argument("--run-time")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--target")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--allow-future", action="store_true")
    args = parser.parse_args()
    record = run_campaign_flow(
        args.campaign,
        args.run_time,
        args.project_dir,
        args.target,
        dry_run=args.dry_run,
        force=args.force,
        allow_future=args.allow_future,
    )
    print(to_markdown(record))


if __name__ == "__main__":
    main()
