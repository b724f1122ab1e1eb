"""Prefect flow that pulls a routing's returns/ folder: a thin wrapper around directmail.returns.

The work is `pull_returns()`, the function `directmail returns pull --routing NAME` calls; the flow adds
a markdown artifact of what was ingested (with its doubtful identities), skipped, ignored and refused,
and ends failed when a file was refused, so that a bad return file shows in the UI. `strict` refuses a
file with a doubtful identity, as `--strict` does. Nothing is stored of a refused file: the next pull
names it again until the mail house replaces it.

Run it once: `python -m flows.returns_flow mailhouse_sftp`; on a schedule, served from this process:
`python -m flows.returns_flow mailhouse_sftp --cron "0 7 * * *" --timezone Europe/Paris`
(see docs/scheduling.md#return-files).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from prefect import flow, get_run_logger, serve
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment

from directmail.builder import DbtProject
from directmail.config import load_config
from directmail.errors import DirectMailError
from directmail.returns import PullReport, pull_returns
from flows import secret_blocks  # noqa: F401  registers ${prefect:block} secret references

FLOW_NAME = "direct-mail-returns"


class ReturnFilesRefused(DirectMailError):
    """At least one return file was refused (the artifact names each bad row)."""


@flow(name=FLOW_NAME, flow_run_name="returns from {routing}", log_prints=True)
def pull_returns_flow(
    routing: str, project_dir: str = ".", target: str | None = None, strict: bool = False
) -> PullReport:
    logger = get_run_logger()
    dbt = DbtProject(Path(project_dir), target)
    config = load_config(dbt.project_dir)
    report = pull_returns(
        config, routing, dbt.target_info(), dbt.project_dir, progress=logger.info, strict=strict
    )
    for line in report.lines():
        logger.info(line)
    key = re.sub(r"[^a-z0-9-]+", "-", f"direct-mail-returns-{routing}".lower())
    create_markdown_artifact(report.to_markdown(), key=key, description=f"Returns from routing {routing}")
    if not report.ok:
        raise ReturnFilesRefused("\n".join(report.refusal_lines()))
    return report


def returns_deployment(
    routing: str,
    project_dir: str,
    cron: str,
    timezone: str = "UTC",
    name: str | None = None,
    strict: bool = False,
) -> RunnerDeployment:
    """A deployment that pulls the routing's returns on a cron schedule."""
    parameters: dict[str, object] = {"routing": routing, "project_dir": str(Path(project_dir).resolve())}
    if strict:
        parameters["strict"] = True
    deployment = pull_returns_flow.to_deployment(
        name=name or f"returns-{routing}",
        schedules=[CronSchedule(cron=cron, timezone=timezone)],
        parameters=parameters,
        description=f"Pull the return files of routing {routing}",
        tags=["directmail"],
    )
    assert isinstance(deployment, RunnerDeployment)  # called outside an event loop: not a coroutine
    return deployment


def main() -> None:
    parser = argparse.ArgumentParser(description="Pull a routing's return files as a Prefect flow.")
    parser.add_argument("routing")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--target")
    parser.add_argument("--cron", help="Serve on this schedule (until Ctrl-C) instead of running once.")
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--strict", action="store_true", help="Refuse files with doubtful identities.")
    args = parser.parse_args()
    if args.cron:
        deployment = returns_deployment(
            args.routing, args.project_dir, args.cron, args.timezone, strict=args.strict
        )
        serve(deployment)
        return
    report = pull_returns_flow(args.routing, args.project_dir, args.target, args.strict)
    print(report.to_markdown())


if __name__ == "__main__":
    main()
