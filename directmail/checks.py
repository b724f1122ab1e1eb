"""`directmail validate`'s checks beyond loading: model columns, routings (offline), and connections."""

from __future__ import annotations

from dataclasses import dataclass

from directmail.campaign import check_columns
from directmail.delivery import probe
from directmail.delivery.preflight import routing_findings
from directmail.errors import BuildError, DeliveryError, Finding, Level
from directmail.project import Project
from directmail.warehouse import open_warehouse, query_labels


def check_project(project: Project, names: list[str] | None = None) -> list[Finding]:
    """Routings and the columns of the selected campaigns that loaded without errors (the others' own
    findings are in `project.campaign_findings`)."""
    findings: list[Finding] = []
    for name in names or []:
        if not project.knows(name):
            findings.append(Finding("models", name, f"no campaign named '{name}'"))
    selected = [c for n, c in project.campaigns.items() if names is None or n in names]
    findings += _routing_findings(project)
    if selected:
        findings += _column_findings(project, selected)
    return findings


def _routing_findings(project: Project) -> list[Finding]:
    """Errors for routings in use; the same problems on unused or draft routings are warnings."""
    used = {c.routing for c in project.config.configurations.values()}
    findings = []
    for name, routing in project.config.routing.items():
        level: Level = "error" if name in used and routing.status == "active" else "warning"
        findings += routing_findings(name, routing, project.directory, level)
    return findings


@dataclass
class ConnectionCheck:
    routing: str
    type: str
    ok: bool
    detail: str


def check_connections(project: Project) -> list[ConnectionCheck]:
    """Connect to every active routing, write a probe file and remove it."""
    results = []
    for name, routing in project.config.routing.items():
        if routing.status != "active":
            continue
        try:
            detail = f"can write to {probe(name, routing, project.directory)}"
            results.append(ConnectionCheck(name, routing.type, True, detail))
        except DeliveryError as exc:
            results.append(ConnectionCheck(name, routing.type, False, str(exc)))
    return results


def _column_findings(project: Project, campaigns: list) -> list[Finding]:
    """Compile the campaigns and describe their queries (duplicates kept) against the warehouse."""
    findings: list[Finding] = []
    try:
        compiled = project.dbt.compiled({c.unique_id: c.name for c in campaigns})
    except BuildError as exc:
        return [Finding("models", "", f"dbt compile failed: {exc}")]
    warehouse = open_warehouse(project.dbt.target_info(), project.directory)
    try:
        for campaign in campaigns:
            sql = compiled[campaign.unique_id]  # compiled() has every campaign's SQL
            try:
                warehouse.describe(sql)  # fails when upstream tables are missing
                labels = query_labels(warehouse, sql)
            except Exception:
                reason = (
                    "columns not checked: its upstream tables are not built yet "
                    "(directmail run --dry-run builds them)"
                )
                findings.append(Finding(campaign.yaml_file, f"models.{campaign.name}", reason, "warning"))
                continue
            findings += check_columns(campaign, labels)
            if campaign.spec.address_columns is None:
                reason = "no address_columns: address fields are not checked"
                findings.append(
                    Finding(campaign.yaml_file, campaign.key("address_columns"), reason, "warning")
                )
    finally:
        warehouse.close()
    return findings
