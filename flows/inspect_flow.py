"""Prefect flow an operator runs from the UI to ask why a profile was or was not mailed.

`explain_profile(campaign, identity, run_id)` publishes the answer, the line `directmail explain` prints,
as the artifact `direct-mail-<campaign>-explain`. `directmail serve` and `deploy` register it as the
deployment `direct-mail-explain/<project folder>`, without a schedule: *Run → Custom run* in the UI asks
for the parameters. Directly: `python -m flows.inspect_flow winter_catalog P000000042`.
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
    parser.add_argument("campaign")
    parser.add_argument("identity")
    parser.add_argument("--run")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--target")
    args = parser.parse_args()
    print(explain_profile(args.campaign, args.identity, args.run, args.project_dir, args.target).line)


if __name__ == "__main__":
    main()
