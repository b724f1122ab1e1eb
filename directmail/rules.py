"""Which exclusions apply to a run, and where their data lives in this run's build.

A test-profile proof builds the project into a schema of its own, so every relation the runner reads is
looked up in what that build produced; a normal run reads the relations dbt's manifest names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from directmail.campaign import Campaign
from directmail.config import Configuration
from directmail.errors import ConfigError, Finding
from directmail.extract import (
    AddressRule,
    ConsentRule,
    FrequencyRule,
    NewEntrantsRule,
    ReturnsRule,
    Rules,
    SuppressionRule,
)
from directmail.project import NodeRef, Project


@dataclass
class Relations:
    """Where each node was built in this run: unique id → relation, for the nodes a proof moved."""

    moved: dict[str, str] = field(default_factory=dict)

    def of(self, unique_id: str | None, relation: str) -> str:
        return self.moved.get(unique_id or "", relation)

    def of_node(self, ref: NodeRef) -> str:
        return self.of(ref.unique_id, ref.relation)


TEST_PROFILES_VAR = "directmail_test_profiles"


def test_profile_relations(project: Project, campaign: Campaign, run_vars: dict[str, Any]) -> Relations:
    """Where a test-profile build puts each node; refused if it would overwrite the real tables."""
    manifest = project.dbt.parse(run_vars)
    relations = {
        uid: node.relation_name
        for uid, node in manifest.nodes.items()
        if getattr(node, "relation_name", None)
    }
    if relations.get(campaign.unique_id, campaign.relation) == campaign.relation:
        reason = (
            f"with the var {TEST_PROFILES_VAR}: true the project would build test profiles over the "
            "campaign's own table; give them their own schema (see the sample's "
            "macros/generate_schema_name.sql)"
        )
        raise ConfigError([Finding("dbt_project.yml", "macros.generate_schema_name", reason)])
    return Relations(relations)


def resolve_rules(
    project: Project,
    configuration: Configuration,
    relations: Relations,
    campaign: Campaign,
    run_time: str,
    run_id: str,
    proof: bool,
    now: str = "",
    replacing: tuple[str, ...] = (),
) -> Rules:
    """The run's rules: consent for the configuration's marketing action, address validity and
    suppression from direct_mail.yml's sources, the campaign's (or configuration's) frequency cap, and
    holdout, and new entrants only; a proof has no history to count and no holdout. `now` (the delivery
    clock) and the run time both anchor the cap's window (I2); `replacing`: runs whose drop this run
    replaces on purpose, whose pieces no longer count. A mail house's
    returns suppress in every run, proofs included, as the suppression lists do."""
    config = project.config
    consent = addresses = suppression = frequency = None
    if config.consent and project.consent_relation:
        relation = relations.of(project.consent_unique_id, project.consent_relation)
        consent = ConsentRule(relation, config.consent, configuration.marketing_action)
    if config.addresses and "addresses" in project.sources:
        addresses = AddressRule(relations.of_node(project.sources["addresses"]), config.addresses)
    if config.suppression and "suppression" in project.sources:
        suppression = SuppressionRule(relations.of_node(project.sources["suppression"]), config.suppression)
    cap = campaign.spec.frequency_cap or configuration.frequency_cap
    if cap is not None and not proof:
        frequency = FrequencyRule(cap, run_time, run_id, now=now, replacing=replacing)
    new_entrants = None
    if campaign.spec.audience == "new_entrants" and not proof:
        new_entrants = NewEntrantsRule(campaign.name, run_id, replacing)
    returns = ReturnsRule(run_time, config.returns.suppress_days)
    return Rules(
        consent,
        addresses,
        suppression,
        frequency,
        holdout=not proof,
        new_entrants=new_entrants,
        returns=returns,
    )
