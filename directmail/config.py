"""Contract 2: `direct_mail.yml`, the routings (where files go) and configurations (what files look like)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from directmail.errors import ConfigError, Finding
from directmail.schedule import Schedule
from directmail.secrets import Secret, SecretRef
from directmail.valueformats import ISO_DATE, ValueFormats, pattern_problem
from directmail.yamlfile import findings_from_validation_error, load_yaml_mapping

CONFIG_FILE = "direct_mail.yml"
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"
MAX_SPLIT_THRESHOLD = 200_000
DELIMITED_SEPARATORS = ("\t", ";", "|", "&")

Status = Literal["active", "draft"]


class StrictModel(BaseModel):
    """Unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class RoutingBase(StrictModel):
    status: Status = "active"
    encryption_key: str | None = Field(
        default=None, description="Path to an armored OpenPGP public key; delivered files get .gpg"
    )

    def secrets(self) -> list[tuple[str, SecretRef]]:
        """The keys that hold secret references, with the references (never the values)."""
        return [(key, value) for key, value in self if isinstance(value, SecretRef)]


class LocalRouting(RoutingBase):
    type: Literal["local"]
    directory: str


class RemoteRouting(RoutingBase):
    retries: int = Field(default=3, ge=0, le=10, description="Further attempts after a transient failure")
    timeout: float = Field(default=30, gt=0, le=3600, description="Seconds to wait on the network")


class SftpRouting(RemoteRouting):
    type: Literal["sftp"]
    host: Annotated[str, StringConstraints(min_length=1)]
    port: int = Field(default=22, ge=1, le=65535)
    username: Annotated[str, StringConstraints(min_length=1)]
    password: Secret | None = None
    private_key: Secret | None = None
    private_key_passphrase: Secret | None = None
    known_hosts: str
    directory: str = "."

    @model_validator(mode="after")
    def _needs_a_credential(self) -> SftpRouting:
        if self.password is None and self.private_key is None:
            raise ValueError("give password or private_key (as ${ENV_VAR})")
        return self


class ObjectStoreRouting(RemoteRouting):
    prefix: str = Field(default="", description="A folder inside the bucket or container")

    @property
    def folder(self) -> str:
        """The prefix as a folder: no leading slash, one trailing slash (or empty)."""
        prefix = self.prefix.strip("/")
        return f"{prefix}/" if prefix else ""


class S3Routing(ObjectStoreRouting):
    type: Literal["s3"]
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    region: Annotated[str, StringConstraints(min_length=1)]
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    endpoint_url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    server_side_encryption: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None


class AzureRouting(ObjectStoreRouting):
    type: Literal["azure"]
    connection_string: Secret
    container: str

    @field_validator("container")
    @classmethod
    def _container_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", value) or "--" in value:
            raise ValueError(
                "container names are 3-63 lowercase letters, digits and single hyphens, "
                "starting and ending with a letter or digit"
            )
        return value


Routing = Annotated[LocalRouting | SftpRouting | S3Routing | AzureRouting, Field(discriminator="type")]


class FrequencyCap(StrictModel):
    """At most `count` pieces per profile in any `days` days, counted from `direct_mail.sends`."""

    count: int = Field(ge=1, le=1000)
    days: int = Field(ge=1, le=3660)

    def describe(self) -> str:
        return f"{self.count} in {self.days} days"


class Configuration(StrictModel):
    routing: str
    format: Literal["csv", "delimited", "fixed_width"] = "csv"  # fixed_width: campaigns give column_widths
    separator: str | None = None
    split_threshold: int = Field(default=MAX_SPLIT_THRESHOLD, ge=1, le=MAX_SPLIT_THRESHOLD)
    encoding: Literal["utf-8", "utf-8-sig", "cp1252", "latin-1"] = "utf-8"
    # How typed columns are written (directmail/valueformats.py): strftime patterns, and the decimal point.
    date_format: str = ISO_DATE
    timestamp_format: str | None = None  # None: ISO 8601 (fractional seconds only when there are some)
    decimal_separator: Literal[".", ","] = "."
    line_ending: Literal["lf", "crlf"] = "lf"
    compression: Literal["none", "gzip", "zip"] = "none"
    marketing_action: str = "direct_mail"
    checksums: bool = True
    manifest: bool = True
    frequency_cap: FrequencyCap | None = None
    on_empty: Literal["skip", "deliver", "fail"] = "skip"  # a run with no row to export
    escape_formulas: bool = False  # a text value starting with = + - @ TAB CR gets a leading '
    # A delivered drop of another run id still under this run's names (I1): stop (default) or replace it
    # on purpose, recording the earlier run `superseded`.
    on_existing: Literal["stop", "replace"] = "stop"

    @field_validator("date_format", "timestamp_format")
    @classmethod
    def _pattern_is_portable(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if problem := pattern_problem(value, dates_only=info.field_name == "date_format"):
            raise ValueError(problem)
        encoding = info.data.get("encoding", "utf-8")
        try:
            value.encode(encoding)
        except UnicodeEncodeError as exc:
            raise ValueError(f"{value[exc.start : exc.end]!r} cannot be written in {encoding}") from None
        return value

    @property
    def value_formats(self) -> ValueFormats:
        return ValueFormats(self.date_format, self.timestamp_format, self.decimal_separator)

    @model_validator(mode="after")
    def _separator_fits_format(self) -> Configuration:
        if self.format == "csv" and self.separator not in (None, ","):
            raise ValueError('format csv always uses ","; use format: delimited for another separator')
        if self.format == "delimited" and self.separator not in DELIMITED_SEPARATORS:
            raise ValueError(r'separator must be one of "\t", ";", "|", "&" for format delimited')
        if self.format == "fixed_width" and self.separator is not None:
            raise ValueError("format fixed_width has no separator: columns are padded to their widths")
        return self

    @property
    def field_separator(self) -> str:
        return self.separator if self.format == "delimited" and self.separator else ","

    @property
    def newline(self) -> str:
        return "\r\n" if self.line_ending == "crlf" else "\n"


class ConsentSource(StrictModel):
    model: str
    identity: str = "profile_id"
    marketing_action: str = "marketing_action"
    value: str = "consent_value"


class AddressSource(StrictModel):
    """A model with one row per profile: its address's validation errors and its household key."""

    model: str
    identity: str = "profile_id"
    errors: str = Field(default="address_errors", description="Empty or NULL when the address is valid")
    household_key: str = Field(default="household_key", description="The normalized address's key")
    validate_model: str | None = Field(
        default=None,
        alias="validate",
        description="The model of raw addresses (address_key + six fields) the runner validates into "
        "direct_mail.address_validations before building the rest",
    )


class SuppressionSource(StrictModel):
    """Do-not-mail lists, matched by profile and/or by normalized address (household key)."""

    model: str
    list: str = "list_name"
    identity: str | None = "profile_id"
    household_key: str | None = "household_key"

    @model_validator(mode="after")
    def _matches_on_something(self) -> SuppressionSource:
        if self.identity is None and self.household_key is None:
            raise ValueError("give identity, household_key or both: what a suppression entry matches on")
        return self


class ReturnsPull(StrictModel):
    """`directmail serve` pulls this routing's returns/ folder on this schedule."""

    routing: str
    schedule: Schedule


class ReturnsSettings(StrictModel):
    """How a mail house's returns (direct_mail.returns) exclude profiles from later runs."""

    suppress_days: int | None = Field(
        default=None, ge=1, le=36600, description="Days after returned_at a return stops suppressing"
    )
    pull: ReturnsPull | None = None


class DirectMailConfig(StrictModel):
    routing: dict[Annotated[str, StringConstraints(pattern=NAME_PATTERN)], Routing] = Field(
        default_factory=dict
    )
    configurations: dict[Annotated[str, StringConstraints(pattern=NAME_PATTERN)], Configuration] = Field(
        default_factory=dict
    )
    consent: ConsentSource | None = None
    addresses: AddressSource | None = None
    suppression: SuppressionSource | None = None
    returns: ReturnsSettings = Field(default_factory=ReturnsSettings)

    def cross_check(self) -> list[Finding]:
        """Checks between sections: each configuration routes to an existing, active routing."""
        findings = []
        for name, configuration in self.configurations.items():
            key = f"configurations.{name}.routing"
            routing = self.routing.get(configuration.routing)
            if routing is None:
                findings.append(
                    Finding(CONFIG_FILE, key, f"routing '{configuration.routing}' is not defined")
                )
            elif routing.status != "active":
                findings.append(Finding(CONFIG_FILE, key, f"routing '{configuration.routing}' is a draft"))
        if self.returns.pull is not None:
            name = self.returns.pull.routing
            if name not in self.routing:
                findings.append(
                    Finding(CONFIG_FILE, "returns.pull.routing", f"routing '{name}' is not defined")
                )
            elif self.routing[name].status != "active":
                findings.append(Finding(CONFIG_FILE, "returns.pull.routing", f"routing '{name}' is a draft"))
        if self.consent is None:
            findings.append(
                Finding(CONFIG_FILE, "consent", "no consent source: consent cannot be enforced", "warning")
            )
        return findings


def load_config(project_dir: Path) -> DirectMailConfig:
    """Load and check direct_mail.yml; raise ConfigError with every problem found."""
    raw = load_yaml_mapping(project_dir / CONFIG_FILE, CONFIG_FILE)
    try:
        config = DirectMailConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(findings_from_validation_error(exc, CONFIG_FILE, model=DirectMailConfig)) from None
    findings = config.cross_check()
    if any(f.level == "error" for f in findings):
        raise ConfigError(findings)
    return config


def config_warnings(config: DirectMailConfig) -> list[Finding]:
    return [f for f in config.cross_check() if f.level == "warning"]


def resolve_directory(project_dir: Path, directory: str) -> Path:
    path = Path(directory)
    return path if path.is_absolute() else project_dir / path
