"""Every active campaign with a schedule becomes a Prefect deployment of `direct-mail-campaign`.

`directmail serve` (or `python -m flows.serve`) registers them and runs them in this process;
`directmail deploy --work-pool P` registers them for a worker of that pool instead. Either way,
deployments of this project whose campaign was removed, set to draft or unscheduled are paused (their
runs stay in the UI's history), and a deployment is named after its campaign, so serving again after
editing a campaign's YAML updates it in place. A campaign with configuration errors is never scheduled
(its deployment, if any, is paused) and is named on stderr; the others are served as usual.

Beside the campaigns: `direct-mail-explain/explain` (no schedule: an operator runs it from the UI with a
campaign and an identity), and, when direct_mail.yml sets `returns.pull`, `direct-mail-returns/returns`
pulling that routing's return files on its schedule (paused again when the key is removed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect import serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags, FlowFilter, FlowFilterName
from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule
from prefect.deployments.runner import RunnerDeployment

from directmail.campaign import Campaign, Schedule
from directmail.project import Project, load_project
from flows.campaign_flow import run_campaign_flow
from flows.inspect_flow import explain_profile
from flows.returns_flow import FLOW_NAME as RETURNS_FLOW
from flows.returns_flow import pull_returns_flow

FLOW_NAME = "direct-mail-campaign"
TAG = "directmail"


def prefect_schedule(schedule: Schedule) -> CronSchedule | RRuleSchedule:
    """cron + timezone as is (Prefect handles daylight saving); `at` as a one-off (RRULE COUNT=1)."""
    if schedule.cron is not None:
        return CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    if schedule.at is None:
        raise ValueError("a schedule has a cron or an at")  # Schedule's validator makes sure of it
    local = schedule.at.astimezone(ZoneInfo(schedule.timezone))
    rule = f"DTSTART:{local:%Y%m%dT%H%M%S}\nRRULE:FREQ=DAILY;COUNT=1"
    return RRuleSchedule(rrule=rule, timezone=schedule.timezone)


def is_scheduled(campaign: Campaign) -> bool:
    return campaign.is_active and campaign.spec.schedule is not None


def campaign_deployments(project: Project) -> list[RunnerDeployment]:
    project_dir = str(project.directory.resolve())
    deployments = []
    for name, campaign in sorted(project.campaigns.items()):
        schedule = campaign.spec.schedule if is_scheduled(campaign) else None
        if schedule is None:
            continue
        deployments.append(
            run_campaign_flow.to_deployment(
                name=name,
                schedules=[prefect_schedule(schedule)],
                parameters={"campaign": name, "project_dir": project_dir},
                description=f"Direct mail campaign {name} (configuration {campaign.spec.configuration})",
                tags=[TAG],
                paused=False,
            )
        )
    return [d for d in deployments if isinstance(d, RunnerDeployment)]  # not coroutines: called sync


def service_deployments(project: Project) -> list[RunnerDeployment]:
    """The explain flow for the UI, and the scheduled pull of return files when `returns.pull` is set."""
    project_dir = str(project.directory.resolve())
    deployments = [
        explain_profile.to_deployment(
            name="explain",
            parameters={"project_dir": project_dir},
            description="Why a profile was mailed, held out or excluded in a campaign's run",
            tags=[TAG],
        )
    ]
    pull = project.config.returns.pull
    if pull is not None:
        deployments.append(
            pull_returns_flow.to_deployment(
                name="returns",
                schedules=[prefect_schedule(pull.schedule)],
                parameters={"routing": pull.routing, "project_dir": project_dir},
                description=f"Pull the return files of routing {pull.routing}",
                tags=[TAG],
                paused=False,
            )
        )
    return [d for d in deployments if isinstance(d, RunnerDeployment)]


@dataclass
class Retired:
    name: str
    reason: str
    flow: str = FLOW_NAME


def pause_retired(project: Project) -> list[Retired]:
    """Pause this project's deployments whose campaign no longer runs on a schedule."""
    project_dir = str(project.directory.resolve())
    retired = []
    with get_client(sync_client=True) as client:
        existing = client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[TAG])),
        )
        for deployment in existing:
            if deployment.parameters.get("project_dir") != project_dir:
                continue
            campaign = project.campaigns.get(deployment.name)
            if campaign is not None and is_scheduled(campaign):
                continue
            if deployment.name in project.invalid_campaigns:
                reason = f"campaign is invalid (directmail validate {deployment.name})"
            elif campaign is None:
                reason = "campaign removed"
            elif not campaign.is_active:
                reason = "campaign is a draft"
            else:
                reason = "campaign has no schedule"
            if not deployment.paused:  # stopping `serve` pauses its deployments already
                client.pause_deployment(deployment.id)
            retired.append(Retired(deployment.name, reason))
        if project.config.returns.pull is None:
            pulls = client.read_deployments(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[RETURNS_FLOW])),
                deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[TAG])),
            )
            for deployment in pulls:
                if deployment.parameters.get("project_dir") == project_dir and not deployment.paused:
                    client.pause_deployment(deployment.id)
                    retired.append(Retired(deployment.name, "returns.pull removed", RETURNS_FLOW))
    return retired


def skipped_invalid(project: Project) -> list[Retired]:
    """Campaigns left unscheduled because of their own configuration errors (first error as reason)."""
    skipped = []
    for name in project.invalid_campaigns:
        first = next(f for f in project.campaign_findings[name] if f.level == "error")
        skipped.append(Retired(name, f"{first}; see directmail validate {name}"))
    return skipped


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def register(
    project: Project, work_pool: str | None = None, say: Callable[[str], None] = _to_stderr
) -> tuple[list[RunnerDeployment], list[Retired]]:
    """Create or update the deployments (for a work pool if given) and pause the retired ones; `say`
    names each invalid campaign, which is never scheduled."""
    for item in skipped_invalid(project):
        say(f"not scheduled: campaign {item.name}: {item.reason}")
    deployments = campaign_deployments(project) + service_deployments(project)
    if work_pool is not None:
        for deployment in deployments:
            deployment.apply(work_pool_name=work_pool)
    return deployments, pause_retired(project)


def serve_deployments(deployments: list[RunnerDeployment]) -> None:
    """Run scheduled and hand-triggered runs in this process until stopped (then Prefect pauses them)."""
    if deployments:
        serve(*deployments, print_starting_message=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the project's scheduled campaigns with Prefect.")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--target")
    args = parser.parse_args()
    deployments, retired = register(load_project(Path(args.project_dir), args.target))
    for item in retired:
        print(f"paused {item.flow}/{item.name}: {item.reason}")
    serve_deployments(deployments)


if __name__ == "__main__":
    main()
