"""I1 across campaigns: two campaigns whose file names could ever be the same name in the same folder.

A drop of one would then take the names of a delivered drop of the other; the run would stop on it
(or, with `on_existing: replace`, remove it). `validate` refuses the pair before that can happen.

Names are compared as shapes: the layout's own naming (contract 3) is applied at two run times, and to
two part numbers, whose digits differ at every position, so the positions that differ are the ones a
placeholder, a timestamp or a part suffix fills with any digit, and the others are literal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from directmail.campaign import Campaign
from directmail.config import DirectMailConfig
from directmail.delivery import destination_key
from directmail.errors import Finding
from directmail.layout import FileLayout

# Every digit of "19990101_000000" differs from the one below it in "20001222_111111"; so do 111 and 222.
_EARLY, _LATE = datetime(1999, 1, 1, tzinfo=UTC), datetime(2000, 12, 22, 11, 11, 11, tzinfo=UTC)
_PARTS = ((1, 1), (111, 999))  # (index, count): a single part, then a numbered one (111 beside 222)
WILDCARD = "#"  # how a shape shows a position any digit fills


def campaign_layout(campaign: Campaign, config: DirectMailConfig, run_time: datetime) -> FileLayout:
    """The names a run of `campaign` at `run_time` writes, with its configuration and routing."""
    configuration = config.configurations.get(campaign.spec.configuration)
    routing = config.routing.get(configuration.routing) if configuration else None
    return FileLayout(
        campaign.spec.file_name,
        run_time,
        append_timestamp=campaign.spec.append_timestamp,
        compression=configuration.compression if configuration is not None else "none",
        encrypted=getattr(routing, "encryption_key", None) is not None,
        campaign=campaign.name,
        configuration=campaign.spec.configuration,
    )


@dataclass(frozen=True)
class Shape:
    """A name with `WILDCARD` where any digit may stand."""

    text: str

    def meets(self, other: Shape) -> bool:
        """Whether some name has both shapes."""
        return len(self.text) == len(other.text) and all(
            a == b or (a == WILDCARD and (b.isdigit() or b == WILDCARD)) or (b == WILDCARD and a.isdigit())
            for a, b in zip(self.text, other.text, strict=True)
        )


def _shape(early: str, late: str) -> Shape:
    if len(early) != len(late):  # a layout whose names vary in length: compared literally
        return Shape(early)
    return Shape("".join(a if a == b else WILDCARD for a, b in zip(early, late, strict=True)))


def name_shapes(campaign: Campaign, config: DirectMailConfig) -> list[Shape]:
    """Every name a drop of `campaign` can put: its parts, their sidecars and its manifest."""
    configuration = config.configurations.get(campaign.spec.configuration)
    if configuration is None:
        return []
    early, late = campaign_layout(campaign, config, _EARLY), campaign_layout(campaign, config, _LATE)
    pairs = [(early.manifest_name, late.manifest_name)] if configuration.manifest else []
    for index, count in _PARTS:
        other = index * 2 if count > 1 else index
        part = (early.part_name(index, count), late.part_name(other, count))
        pairs.append(part)
        if configuration.checksums:
            pairs.append((FileLayout.checksum_name(part[0]), FileLayout.checksum_name(part[1])))
    return [_shape(a, b) for a, b in pairs]


def collision_findings(
    campaigns: dict[str, Campaign], config: DirectMailConfig, project_dir: Path
) -> dict[str, list[Finding]]:
    """For each campaign whose names another campaign at the same destination could also write, one
    finding naming the other and a name both can write: an error when both are active, else a warning."""
    placed = []
    for campaign in campaigns.values():
        configuration = config.configurations.get(campaign.spec.configuration)
        routing = config.routing.get(configuration.routing) if configuration else None
        if routing is not None:
            placed.append((campaign, destination_key(routing, project_dir), name_shapes(campaign, config)))
    found: dict[str, list[Finding]] = {}
    for campaign, where, shapes in placed:
        for other, other_where, other_shapes in placed:
            if other is campaign or other_where != where:
                continue
            shared = next((a for a in shapes for b in other_shapes if a.meets(b)), None)
            if shared is None:
                continue
            active = campaign.spec.status == "active" and other.spec.status == "active"
            reason = (
                f"file_name can expand to names campaign {other.name} also writes at the same destination "
                f"(e.g. {shared.text}, {WILDCARD} standing for any digit): one would stop on or replace "
                "the other's delivered drop; give each campaign its own names (a {campaign} placeholder "
                "or another folder)"
            )
            finding = Finding(campaign.yaml_file, campaign.key("file_name"), reason)
            found.setdefault(campaign.name, []).append(
                finding if active else replace(finding, level="warning")
            )
    return found
