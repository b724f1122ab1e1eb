"""Prefect flow an operator runs from the UI to ask why a profile was or was not mailed.

`explain_profile(campaign, identity, run_id)` publishes the answer, the line `directmail explain` prints,
as the artifact `direct-mail-<campaign>-explain`. `python -m flows.inspect_flow --serve` serves it as the
deployment `direct-mail-explain/explain` (no schedule): *Run → Custom run* in the UI asks for the
parameters. Directly: `python -m flows.inspect_flow winter_catalog P000000042`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from directmail.builder import DbtProject
from directmail.explain import Explanation, explain
from directmail.reading import read_warehouse
from flows.campaign_flow import artifact_key

FLOW_NAME = "direct-mail-explain"


@flow(name=FLOW_NAME, flow_run_name="explain {identity} in {campaign}")
def explain_profile(
    campaign: str,
    identity: str,
    run_id: str | None = None,
    project_dir: str = ".",
    target: str | None = None,
) -> Explanation:
    """Why `identity` was mailed, held out or excluded in `run_id` (default: the latest committed run)."""
    dbt = DbtProject(Path(project_dir), target)
    explanation = read_warehouse(dbt, lambda warehouse: explain(warehouse, campaign, identity, run_id))
    get_run_logger().info(explanation.line)
    create_markdown_artifact(
        f"# Why `{identity}`: `{campaign}`\n\n{explanation.line}",
        key=artifact_key(campaign, "explain"),
        description=f"explain {identity} in {explanation.run_id}",
    )
    return explanation


def main() -> None:
    parser = argparse.ArgumentParser(description="Why one profile was or was not mailed, as a Prefect flow.")
    parser.add_argument("campaign", nargs="?")
    parser.add_argument("identity", nargs="?")
    parser.add_argument("--run")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--target")
    parser.add_argument("--serve", action="store_true", help="Serve the flow for runs from the UI.")
    args = parser.parse_args()
    project_dir = str(Path(args.project_dir).resolve())
    if args.serve:
        parameters = {"project_dir": project_dir, "target": args.target}
        explain_profile.serve(name="explain", parameters=parameters, tags=["directmail"])
        return
    if not (args.campaign and args.identity):
        parser.error("CAMPAIGN and IDENTITY are required (or --serve)")
    print(explain_profile(args.campaign, args.identity, args.run, project_dir, args.target).line)


if __name__ == "__main__":
    main()
