"""A directmail project: the dbt project, its direct_mail.yml and the campaigns found in its models."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from directmail.builder import DbtProject
from directmail.campaign import Campaign, check_against_config, parse_campaign_spec
from directmail.config import CONFIG_FILE, DirectMailConfig, config_warnings, load_config
from directmail.errors import ConfigError, Finding
from directmail.namecollisions import collision_findings
from directmail.parsecache import NodeInfo
from directmail.valuechecks import header_findings


@dataclass(frozen=True)
class NodeRef:
    """A dbt model or seed the runner reads: where it is built, and how to select it for a build."""

    name: str
    relation: str
    unique_id: str


@dataclass
class Project:
    """What a command needs; a campaign with errors is left out of `campaigns` and blocks only itself."""

    directory: Path
    dbt: DbtProject
    config: DirectMailConfig
    campaigns: dict[str, Campaign]  # the campaigns without errors
    consent_relation: str | None
    consent_unique_id: str | None
    warnings: list[Finding] = field(default_factory=list)  # project-wide
    sources: dict[str, NodeRef] = field(default_factory=dict)  # "addresses", "suppression"
    seeds: dict[str, NodeRef] = field(default_factory=dict)  # seed lists, by seed name
    # Findings by campaign name, for every campaign that has any (one whose spec does not parse included).
    campaign_findings: dict[str, list[Finding]] = field(default_factory=dict)

    @property
    def invalid_campaigns(self) -> list[str]:
        """Campaigns with errors: refused by name, never scheduled; the others are unaffected."""
        return sorted(name for name, found in self.campaign_findings.items() if _has_error(found))

    def findings(self, names: list[str] | None = None) -> list[Finding]:
        """Project-wide warnings, then the findings of every campaign (or of the named ones)."""
        chosen = sorted(self.campaign_findings) if names is None else names
        return [*self.warnings, *(f for name in chosen for f in self.campaign_findings.get(name, []))]

    def knows(self, name: str) -> bool:
        return name in self.campaigns or name in self.campaign_findings

    def campaign(self, name: str) -> Campaign:
        errors = [f for f in self.campaign_findings.get(name, []) if f.level == "error"]
        if errors:
            raise ConfigError(errors)
        if name not in self.campaigns:
            known = ", ".join(sorted(self.campaigns)) or "none"
            raise ConfigError([Finding("models", name, f"no campaign named '{name}' (campaigns: {known})")])
        return self.campaigns[name]


def load_project(directory: Path, target: str | None = None) -> Project:
    """Load and check everything that can be checked without the warehouse.

    Project-wide errors (direct_mail.yml, the consent and address sources) raise ConfigError: nothing can
    run. A campaign's own errors are kept in `campaign_findings`, so that a broken draft does not stop
    every other campaign; `Project.campaign(name)` refuses that one campaign.

    The one loading path of every command. dbt is imported only when its parse is not cached (see
    directmail/parsecache.py); then errors found without dbt (direct_mail.yml, YAML syntax in the
    project's files) are reported first, and dbt is not started for a project that cannot run anyway.
    """
    directory = directory.resolve()
    findings: list[Finding] = []
    try:
        config = load_config(directory)
    except ConfigError as exc:
        config, findings = None, list(exc.findings)
    dbt = DbtProject(directory, target)
    nodes = dbt.cached_nodes()
    if nodes is None:
        findings += dbt.yaml_findings()
        if _has_error(findings) or config is None:
            raise ConfigError(findings)
        nodes = dbt.parse_nodes()
    campaigns, by_campaign = _campaigns_from_nodes(nodes)
    consent_relation = consent_unique_id = None
    sources: dict[str, NodeRef] = {}
    seeds: dict[str, NodeRef] = {}
    if config is not None:
        for campaign in campaigns.values():
            _add(by_campaign, campaign.name, check_against_config(campaign, config))
            chosen = config.configurations.get(campaign.spec.configuration)
            if chosen is not None:  # the notes in the configuration's encoding (the labels need the model)
                _add(by_campaign, campaign.name, header_findings(campaign, [], chosen.encoding))
        for colliding, collisions in collision_findings(campaigns, config, directory).items():
            _add(by_campaign, colliding, collisions)
        if config.consent is not None:
            node = _find_node(nodes, config.consent.model)
            if node is None:
                reason = f"'{config.consent.model}' is not a model or seed of the dbt project"
                findings.append(Finding(CONFIG_FILE, "consent.model", reason))
            else:
                consent_relation, consent_unique_id = node.relation_name, node.unique_id
        for key in ("addresses", "suppression"):
            source = getattr(config, key)
            if source is None:
                continue
            node = _find_node(nodes, source.model)
            if node is None:
                reason = f"'{source.model}' is not a model or seed of the dbt project"
                findings.append(Finding(CONFIG_FILE, f"{key}.model", reason))
            else:
                sources[key] = NodeRef(node.name, node.relation_name or "", node.unique_id)
        findings += config_warnings(config)
    for campaign in campaigns.values():
        name = campaign.spec.seed_list
        if name is None:
            continue
        node = _find_node(nodes, name)
        if node is None or node.resource_type != "seed":
            reason = f"'{name}' is not a seed of the dbt project (seed lists are dbt seeds)"
            _add(by_campaign, campaign.name, [Finding(campaign.yaml_file, campaign.key("seed_list"), reason)])
        else:
            seeds[name] = NodeRef(node.name, node.relation_name or "", node.unique_id)
    if _has_error(findings) or config is None:
        # Nothing can run; every campaign's findings come along, so that one `validate` shows them all.
        raise ConfigError([*findings, *(f for name in sorted(by_campaign) for f in by_campaign[name])])
    return Project(
        directory,
        dbt,
        config,
        {name: c for name, c in campaigns.items() if not _has_error(by_campaign.get(name, []))},
        consent_relation,
        consent_unique_id,
        [f for f in findings if f.level == "warning"],
        sources,
        seeds,
        dict(sorted(by_campaign.items())),
    )


def _has_error(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)


def _add(by_campaign: dict[str, list[Finding]], name: str, findings: list[Finding]) -> None:
    if findings:
        by_campaign.setdefault(name, []).extend(findings)


def _campaigns_from_nodes(nodes: list[NodeInfo]) -> tuple[dict[str, Campaign], dict[str, list[Finding]]]:
    """Every model with `meta.direct_mail`; one whose spec does not parse has findings and no Campaign."""
    campaigns: dict[str, Campaign] = {}
    findings: dict[str, list[Finding]] = {}
    for node in nodes:
        if node.resource_type != "model" or "direct_mail" not in node.meta:
            continue
        spec, errors = parse_campaign_spec(node.name, node.meta["direct_mail"], node.yaml_file)
        _add(findings, node.name, errors)
        if spec is not None:
            relation = node.relation_name or ""  # an ephemeral model has none
            campaigns[node.name] = Campaign(
                node.name, spec, node.unique_id, relation, node.yaml_file, list(node.depends_on)
            )
    return dict(sorted(campaigns.items())), findings


def _find_node(nodes: list[NodeInfo], name: str) -> NodeInfo | None:
    """A model, seed or snapshot by name (the nodes hold no other kinds)."""
    return next((node for node in nodes if node.name == name), None)
