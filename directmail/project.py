"""A directmail project: the dbt project, its direct_mail.yml and the campaigns found in its models."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from directmail.builder import DbtProject
from directmail.campaign import Campaign, check_against_config, parse_campaign_spec
from directmail.config import CONFIG_FILE, DirectMailConfig, config_warnings, load_config
from directmail.errors import ConfigError, Finding


@dataclass(frozen=True)
class NodeRef:
    """A dbt model or seed the runner reads: where it is built, and how to select it for a build."""

    name: str
    relation: str
    unique_id: str


@dataclass
class Project:
    directory: Path
    dbt: DbtProject
    config: DirectMailConfig
    campaigns: dict[str, Campaign]
    consent_relation: str | None
    consent_unique_id: str | None
    warnings: list[Finding] = field(default_factory=list)
    sources: dict[str, NodeRef] = field(default_factory=dict)  # "addresses", "suppression"
    seeds: dict[str, NodeRef] = field(default_factory=dict)  # seed lists, by seed name

    def campaign(self, name: str) -> Campaign:
        if name not in self.campaigns:
            known = ", ".join(sorted(self.campaigns)) or "none"
            raise ConfigError([Finding("models", name, f"no campaign named '{name}' (campaigns: {known})")])
        return self.campaigns[name]


def load_project(directory: Path, target: str | None = None) -> Project:
    """Load and check everything that can be checked without the warehouse; raise ConfigError on errors."""
    directory = directory.resolve()
    findings: list[Finding] = []
    try:
        config = load_config(directory)
    except ConfigError as exc:
        config, findings = None, list(exc.findings)
    dbt = DbtProject(directory, target)
    manifest = dbt.parse()
    campaigns, campaign_findings = _campaigns_from_manifest(manifest)
    findings += campaign_findings
    consent_relation = consent_unique_id = None
    sources: dict[str, NodeRef] = {}
    seeds: dict[str, NodeRef] = {}
    if config is not None:
        for campaign in campaigns.values():
            findings += check_against_config(campaign, config)
        if config.consent is not None:
            node = _find_node(manifest, config.consent.model)
            if node is None:
                reason = f"'{config.consent.model}' is not a model or seed of the dbt project"
                findings.append(Finding(CONFIG_FILE, "consent.model", reason))
            else:
                consent_relation, consent_unique_id = node.relation_name, node.unique_id
        for key in ("addresses", "suppression"):
            source = getattr(config, key)
            if source is None:
                continue
            node = _find_node(manifest, source.model)
            if node is None:
                reason = f"'{source.model}' is not a model or seed of the dbt project"
                findings.append(Finding(CONFIG_FILE, f"{key}.model", reason))
            else:
                sources[key] = NodeRef(node.name, node.relation_name, node.unique_id)
        findings += config_warnings(config)
    for campaign in campaigns.values():
        name = campaign.spec.seed_list
        if name is None:
            continue
        node = _find_node(manifest, name)
        if node is None or node.resource_type != "seed":
            reason = f"'{name}' is not a seed of the dbt project (seed lists are dbt seeds)"
            findings.append(Finding(campaign.yaml_file, campaign.key("seed_list"), reason))
        else:
            seeds[name] = NodeRef(node.name, node.relation_name, node.unique_id)
    if any(f.level == "error" for f in findings) or config is None:
        raise ConfigError(findings)
    return Project(
        directory,
        dbt,
        config,
        campaigns,
        consent_relation,
        consent_unique_id,
        [f for f in findings if f.level == "warning"],
        sources,
        seeds,
    )


def _campaigns_from_manifest(manifest: Any) -> tuple[dict[str, Campaign], list[Finding]]:
    campaigns, findings = {}, []
    for node in manifest.nodes.values():
        if node.resource_type != "model" or "direct_mail" not in (node.config.meta or {}):
            continue
        yaml_file = (node.patch_path or node.original_file_path).split("://", 1)[-1]
        spec, errors = parse_campaign_spec(node.name, node.config.meta["direct_mail"], yaml_file)
        findings += errors
        if spec is not None:
            campaigns[node.name] = Campaign(
                node.name, spec, node.unique_id, node.relation_name, yaml_file, list(node.depends_on.nodes)
            )
    return dict(sorted(campaigns.items())), findings


def _find_node(manifest: Any, name: str) -> Any:
    for node in manifest.nodes.values():
        if node.resource_type in ("model", "seed", "snapshot") and node.name == name:
            return node
    return None
