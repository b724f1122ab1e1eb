"""`directmail validate`'s checks that go beyond loading: model columns and the secrets routings need."""

from __future__ import annotations

from directmail.campaign import check_columns
from directmail.config import CONFIG_FILE
from directmail.errors import BuildError, Finding
from directmail.project import Project
from directmail.secrets import SecretRef
from directmail.warehouse import open_warehouse, query_labels


def check_project(project: Project, names: list[str] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for name in names or []:
        if name not in project.campaigns:
            findings.append(Finding("models", name, f"no campaign named '{name}'"))
    selected = [c for n, c in project.campaigns.items() if names is None or n in names]
    findings += _secret_findings(project)
    if selected:
        findings += _column_findings(project, selected)
    return findings


def _secret_findings(project: Project) -> list[Finding]:
    used = {c.routing for c in project.config.configurations.values()}
    findings = []
    for name, routing in project.config.routing.items():
        for key, value in routing:
            if isinstance(value, SecretRef) and not value.is_set():
                level = "error" if name in used and routing.status == "active" else "warning"
                reason = f"environment variable {value.name} is not set"
                findings.append(Finding(CONFIG_FILE, f"routing.{name}.{key}", reason, level))
    return findings


def _column_findings(project: Project, campaigns: list) -> list[Finding]:
    """Compile the campaigns and describe their queries (duplicates kept) against the warehouse."""
    findings: list[Finding] = []
    try:
        compiled = project.dbt.compile_many([c.name for c in campaigns])
    except BuildError as exc:
        return [Finding("models", "", f"dbt compile failed: {exc}")]
    warehouse = open_warehouse(project.dbt.target_info(), project.directory)
    try:
        for campaign in campaigns:
            sql = compiled.get(campaign.unique_id)
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
