"""Contract 1: a campaign is a dbt model whose `meta.direct_mail` says how its rows become files."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from directmail.config import CONFIG_FILE, DirectMailConfig, FrequencyCap, Status, StrictModel
from directmail.errors import Finding
from directmail.filenames import path_problem, template_problem
from directmail.layout import name_length_problem
from directmail.schedule import Schedule, cron_problem  # noqa: F401  (cron_problem: part of this module's API)
from directmail.valuechecks import control_problem
from directmail.yamlfile import findings_from_validation_error

MAX_COLUMNS = 50
MAX_COLUMN_WIDTH = 10_000  # characters; a typo of a few zeros would otherwise pad every row to gigabytes
_SORT_KEY = re.compile(r"^(?P<column>.+?)(?:\s+(?P<direction>asc|desc))?$", re.IGNORECASE)

SingleLine = Annotated[str, StringConstraints(pattern=r"^[^\r\n]*$")]


class AddressColumns(StrictModel):
    lines: list[str] = Field(min_length=1, max_length=6)
    postal_code: str
    city: str
    region: str | None = None
    country: str

    def required(self) -> list[str]:
        """Columns that must be non-empty on every row."""
        return [self.lines[0], self.postal_code, self.city, self.country]

    def all_columns(self) -> list[str]:
        return [
            *self.lines,
            self.postal_code,
            self.city,
            *([self.region] if self.region else []),
            self.country,
        ]


@dataclass(frozen=True)
class SortKey:
    column: str
    descending: bool = False


class CampaignSpec(StrictModel):
    configuration: str
    status: Status = "active"
    file_name: str
    append_timestamp: bool = False
    header_note: SingleLine | None = None
    footer_note: SingleLine | None = None
    sort_by: list[str] = Field(default_factory=list)
    identity: str = "profile_id"
    export_identity: bool = False
    holdout_percent: float = Field(default=0, ge=0, le=50)
    schedule: Schedule | None = None
    address_columns: AddressColumns | None = None
    max_lengths: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    household: bool = False
    household_order: list[str] = Field(default_factory=list)
    frequency_cap: FrequencyCap | None = None
    seed_list: str | None = None
    audience: Literal["all", "new_entrants"] = "all"  # new_entrants: never a profile it delivered to
    # format fixed_width only: characters per written column (checked against the model's columns)
    column_widths: dict[str, Annotated[int, Field(strict=True, ge=1, le=MAX_COLUMN_WIDTH)]] | None = None

    @model_validator(mode="after")
    def _household_order_needs_household(self) -> CampaignSpec:
        if self.household_order and not self.household:
            raise ValueError("household_order is only used with household: true")
        return self

    @field_validator("file_name")
    @classmethod
    def _relative_file_name(cls, value: str) -> str:
        if problem := path_problem(value) or template_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("header_note", "footer_note")
    @classmethod
    def _printable_note(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and (problem := control_problem(value)):
            raise ValueError(f"{info.field_name} {problem}")
        return value

    @property
    def sort_keys(self) -> list[SortKey]:
        return _sort_keys(self.sort_by)

    @property
    def household_keys(self) -> list[SortKey]:
        """Who represents a household: these keys, then the identity ascending."""
        return _sort_keys(self.household_order)


def _sort_keys(items: list[str]) -> list[SortKey]:
    keys = []
    for item in items:
        text = item.strip()
        match = _SORT_KEY.match(text)
        if match is None:  # empty, or a line break inside: no column has that name (check_columns says so)
            keys.append(SortKey(text))
            continue
        direction = (match.group("direction") or "asc").lower()
        keys.append(SortKey(match.group("column"), direction == "desc"))
    return keys


@dataclass
class Campaign:
    """A campaign model as dbt knows it, with its validated direct_mail settings."""

    name: str
    spec: CampaignSpec
    unique_id: str
    relation: str
    yaml_file: str
    depends_on: list[str] = field(default_factory=list)

    def key(self, name: str) -> str:
        return f"models.{self.name}.config.meta.direct_mail.{name}"

    @property
    def is_active(self) -> bool:
        return self.spec.status == "active"


def parse_campaign_spec(name: str, meta: object, yaml_file: str) -> tuple[CampaignSpec | None, list[Finding]]:
    prefix = f"models.{name}.config.meta.direct_mail"
    if not isinstance(meta, dict):
        return None, [Finding(yaml_file, prefix, "must be a mapping")]
    try:
        spec = CampaignSpec.model_validate(meta)
    except ValidationError as exc:
        return None, findings_from_validation_error(exc, yaml_file, prefix, CampaignSpec)
    try:  # the names a run writes from it, with this campaign's and configuration's names filled in
        problem = name_length_problem(spec.file_name, name, spec.configuration, spec.append_timestamp)
    except ValueError as exc:  # the campaign or configuration name makes the expanded name unsafe
        problem = str(exc)
    if problem:
        return None, [Finding(yaml_file, f"{prefix}.file_name", problem)]
    return spec, []


def check_against_config(campaign: Campaign, config: DirectMailConfig) -> list[Finding]:
    """A campaign names a configuration that exists, whose routing exists and is active."""
    configuration = config.configurations.get(campaign.spec.configuration)
    if configuration is None:
        reason = f"configuration '{campaign.spec.configuration}' is not defined in {CONFIG_FILE}"
        return [Finding(campaign.yaml_file, campaign.key("configuration"), reason)]
    if campaign.spec.household and config.addresses is None and campaign.spec.address_columns is None:
        reason = (
            f"household: true needs an addresses source in {CONFIG_FILE} (normalized household keys) "
            "or address_columns"
        )
        return [Finding(campaign.yaml_file, campaign.key("household"), reason)]
    if configuration.compression == "zip":  # .zip is a byte longer than the .gz parsing measured with
        spec = campaign.spec
        try:
            problem = name_length_problem(
                spec.file_name, campaign.name, spec.configuration, spec.append_timestamp, "zip"
            )
        except ValueError as exc:
            problem = str(exc)
        if problem:
            return [Finding(campaign.yaml_file, campaign.key("file_name"), problem)]
    return _column_widths_findings(campaign, configuration.format)


def _column_widths_findings(campaign: Campaign, file_format: str) -> list[Finding]:
    """column_widths goes with format fixed_width, and only with it: a width nothing reads is a mistake
    (most likely the wrong configuration), not a setting to ignore."""
    widths, key = campaign.spec.column_widths, campaign.key("column_widths")
    configuration = campaign.spec.configuration
    if file_format == "fixed_width" and widths is None:
        reason = f"required: configuration '{configuration}' has format fixed_width (a width per column)"
        return [Finding(campaign.yaml_file, key, reason)]
    if file_format != "fixed_width" and widths is not None:
        reason = f"only for format fixed_width; configuration '{configuration}' has format {file_format}"
        return [Finding(campaign.yaml_file, key, reason)]
    return []


def check_columns(campaign: Campaign, columns: list[str]) -> list[Finding]:
    """Checks that need the model's columns: labels, counts, and every column the settings name."""
    spec, findings = campaign.spec, []

    def error(key: str, reason: str) -> None:
        findings.append(
            Finding(campaign.yaml_file, campaign.key(key) if key else f"models.{campaign.name}", reason)
        )

    seen: dict[str, str] = {}
    for label in columns:
        folded = label.casefold()
        if folded in seen:
            error("", f"duplicate column label '{label}' (labels must be unique, ignoring case)")
        seen[folded] = label
        if not label.strip():
            error("", "a column label is empty")
    present = set(columns)
    if spec.identity not in present:
        error("identity", f"identity column '{spec.identity}' is not a column of the model")
    written = written_columns(campaign, columns)
    if not 1 <= len(written) <= MAX_COLUMNS:
        error("", f"{len(written)} columns would be written; a file has 1 to {MAX_COLUMNS}")
    for key in spec.sort_keys:
        if key.column not in present:
            error("sort_by", f"sort column '{key.column}' is not a column of the model")
    for key in spec.household_keys:
        if key.column not in present:
            error("household_order", f"column '{key.column}' is not a column of the model")
    if spec.address_columns:
        for column in spec.address_columns.all_columns():
            if column not in written:
                error("address_columns", f"address column '{column}' is not a written column")
    for column in spec.max_lengths:
        if column not in written:
            error("max_lengths", f"column '{column}' is not a written column")
    if spec.column_widths is not None:
        for column in written:
            if column not in spec.column_widths:
                error("column_widths", f"no width for written column '{column}'")
        for column in spec.column_widths:
            if column not in written:
                error(f"column_widths.{column}", f"column '{column}' is not a written column")
    return findings


def written_columns(campaign: Campaign, columns: list[str]) -> list[str]:
    spec = campaign.spec
    return [c for c in columns if c != spec.identity or spec.export_identity]
