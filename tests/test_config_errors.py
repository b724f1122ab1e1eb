"""Bad configuration is refused before any work, with the file, the key and the reason on one line."""

from __future__ import annotations

import pytest
import yaml

from directmail.campaign import Campaign, check_columns, parse_campaign_spec
from directmail.config import load_config
from directmail.errors import ConfigError
from directmail.secrets import SecretRef

VALID = {
    "routing": {
        "landing": {"type": "local", "directory": "landing"},
        "mailhouse_sftp": {
            "type": "sftp",
            "host": "sftp.example.com",
            "username": "acme",
            "password": "${MAILHOUSE_SFTP_PASSWORD}",
            "known_hosts": "keys/known_hosts",
        },
        "later": {"type": "local", "status": "draft", "directory": "later"},
    },
    "configurations": {"csv": {"routing": "landing"}},
    "consent": {"model": "stg_crm__consents"},
}


def errors_for(tmp_path, document: dict) -> list[str]:
    (tmp_path / "direct_mail.yml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    return str(raised.value).splitlines()


def with_change(section: str, name: str, **changes) -> dict:
    document = yaml.safe_load(yaml.safe_dump(VALID))
    document[section][name].update(changes)
    return document


def test_the_valid_document_loads_and_keeps_secrets_as_references(tmp_path, monkeypatch):
    (tmp_path / "direct_mail.yml").write_text(yaml.safe_dump(VALID))
    config = load_config(tmp_path)
    sftp = config.routing["mailhouse_sftp"]
    assert sftp.password == SecretRef("MAILHOUSE_SFTP_PASSWORD")
    monkeypatch.setenv("MAILHOUSE_SFTP_PASSWORD", "s3cr3t-value")
    assert sftp.password.reveal() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(config) and "s3cr3t-value" not in config.model_dump_json()


@pytest.mark.parametrize(
    ("section", "name", "changes", "expected"),
    [
        (
            "configurations",
            "csv",
            {"colour": "blue"},
            "error: direct_mail.yml: configurations.csv.colour: unknown key",
        ),
        (
            "configurations",
            "csv",
            {"routing": "later"},
            "error: direct_mail.yml: configurations.csv.routing: routing 'later' is a draft",
        ),
        (
            "configurations",
            "csv",
            {"routing": "nowhere"},
            "error: direct_mail.yml: configurations.csv.routing: routing 'nowhere' is not defined",
        ),
        (
            "configurations",
            "csv",
            {"format": "delimited", "separator": ","},
            'error: direct_mail.yml: configurations.csv: separator must be one of "\\t", ";", "|", "&" for format delimited',
        ),
        (
            "configurations",
            "csv",
            {"separator": ";"},
            'error: direct_mail.yml: configurations.csv: format csv always uses ","; use format: delimited for another separator',
        ),
        (
            "configurations",
            "csv",
            {"split_threshold": 0},
            "error: direct_mail.yml: configurations.csv.split_threshold: Input should be greater than or equal to 1",
        ),
        (
            "configurations",
            "csv",
            {"split_threshold": 200001},
            "error: direct_mail.yml: configurations.csv.split_threshold: Input should be less than or equal to 200000",
        ),
        (
            "configurations",
            "csv",
            {"encoding": "utf-16"},
            "error: direct_mail.yml: configurations.csv.encoding: Input should be 'utf-8', 'utf-8-sig', 'cp1252' or 'latin-1'",
        ),
        (
            "configurations",
            "csv",
            {"line_ending": "cr"},
            "error: direct_mail.yml: configurations.csv.line_ending: Input should be 'lf' or 'crlf'",
        ),
        (
            "routing",
            "landing",
            {"type": "ftp"},
            "error: direct_mail.yml: routing.landing: Input tag 'ftp' found using 'type' does not match any of the expected tags: 'local', 'sftp', 's3', 'azure'",
        ),
        (
            "routing",
            "mailhouse_sftp",
            {"password": "hunter2"},
            "error: direct_mail.yml: routing.mailhouse_sftp.password: a secret must be written as ${ENV_VAR} or ${prefect:block-name}, never inline",
        ),
        (
            "routing",
            "mailhouse_sftp",
            {"password": "${vault:mailhouse}"},
            "error: direct_mail.yml: routing.mailhouse_sftp.password: unknown secret scheme 'vault' (use ${ENV_VAR} or ${prefect:block})",
        ),
        (
            "routing",
            "mailhouse_sftp",
            {"retries": 11},
            "error: direct_mail.yml: routing.mailhouse_sftp.retries: Input should be less than or equal to 10",
        ),
        (
            "configurations",
            "csv",
            {"frequency_cap": {"count": 0, "days": 30}},
            "error: direct_mail.yml: configurations.csv.frequency_cap.count: Input should be greater than or equal to 1",
        ),
        (
            "configurations",
            "csv",
            {"frequency_cap": {"count": 1, "days": 30, "weeks": 2}},
            "error: direct_mail.yml: configurations.csv.frequency_cap.weeks: unknown key",
        ),
        (
            "routing",
            "mailhouse_sftp",
            {"port": 70000},
            "error: direct_mail.yml: routing.mailhouse_sftp.port: Input should be less than or equal to 65535",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_file_key_and_reason(tmp_path, section, name, changes, expected):
    lines = errors_for(tmp_path, with_change(section, name, **changes))
    assert lines == [expected]
    assert "hunter2" not in "\n".join(lines)


@pytest.mark.parametrize(
    ("routing", "expected"),
    [
        (
            {"type": "s3", "bucket": "Mail_Drops", "region": "eu-west-1"},
            "error: direct_mail.yml: routing.drop.bucket: String should match pattern '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'",
        ),
        (
            {"type": "s3", "bucket": "drops", "region": "eu-west-1", "endpoint_url": "localhost:9000"},
            "error: direct_mail.yml: routing.drop.endpoint_url: String should match pattern '^https?://'",
        ),
        (
            {"type": "azure", "connection_string": "${AZ}", "container": "Mail--Drops"},
            "error: direct_mail.yml: routing.drop.container: container names are 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
        ),
        (
            {
                "type": "azure",
                "connection_string": "DefaultEndpointsProtocol=https;AccountKey=abc",
                "container": "drops",
            },
            "error: direct_mail.yml: routing.drop.connection_string: a secret must be written as ${ENV_VAR} or ${prefect:block-name}, never inline",
        ),
    ],
)
def test_cloud_routing_mistakes(tmp_path, routing, expected):
    document = yaml.safe_load(yaml.safe_dump(VALID))
    document["routing"]["drop"] = routing
    lines = errors_for(tmp_path, document)
    assert lines == [expected]
    assert "AccountKey=abc" not in "\n".join(lines)


def test_prefect_secret_references_and_scrubbing(monkeypatch):
    from directmail import secrets
    from directmail.config import SftpRouting

    routing = SftpRouting.model_validate(
        {
            "type": "sftp",
            "host": "h",
            "username": "u",
            "password": "${prefect:mailhouse-pass}",
            "known_hosts": "k",
        }
    )
    assert routing.password == SecretRef("mailhouse-pass", "prefect")
    assert repr(routing.password) == "SecretRef(${prefect:mailhouse-pass})"
    with pytest.raises(LookupError, match="needs the Prefect integration"):
        SecretRef("nobody-registered-this", "otherscheme").reveal()
    monkeypatch.setitem(secrets._resolvers, "prefect", lambda name: f"value-of-{name}-42")
    assert routing.password.reveal() == "value-of-mailhouse-pass-42"
    assert "value-of-mailhouse-pass-42" not in repr(routing)
    assert secrets.scrub("login with value-of-mailhouse-pass-42 failed") == "login with *** failed"


def test_missing_known_hosts_and_credentials_are_reported_together(tmp_path):
    document = with_change("routing", "mailhouse_sftp")
    del document["routing"]["mailhouse_sftp"]["known_hosts"]
    del document["routing"]["mailhouse_sftp"]["password"]
    assert errors_for(tmp_path, document) == [
        "error: direct_mail.yml: routing.mailhouse_sftp.known_hosts: required key is missing"
    ]


def test_yaml_syntax_errors_name_the_line(tmp_path):
    (tmp_path / "direct_mail.yml").write_text("routing:\n  landing: {type: local\n")
    with pytest.raises(ConfigError, match=r"direct_mail.yml: line \d+: invalid YAML"):
        load_config(tmp_path)


BASE_META = {"configuration": "csv", "file_name": "out/file.csv"}


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [
        (
            {"file_name": "../escape.csv"},
            "file_name",
            "file_name must not contain '..', '.' or empty folders",
        ),
        ({"file_name": "/etc/passwd"}, "file_name", "file_name must be relative, not absolute"),
        (
            {"file_name": "out/{date}.csv"},
            "file_name",
            "file_name placeholder '{date}' is unknown; use {campaign}, {configuration}, {run_date}, {run_time}",
        ),
        ({"holdout_percent": 51}, "holdout_percent", "Input should be less than or equal to 50"),
        ({"header_note": "two\nlines"}, "header_note", "String should match pattern '^[^\\r\\n]*$'"),
        ({"status": "paused"}, "status", "Input should be 'active' or 'draft'"),
        ({"sort": ["x"]}, "sort", "unknown key"),
        ({"frequency_cap": {"count": 2}}, "frequency_cap.days", "required key is missing"),
        ({"household": True, "household_order": "ltv"}, "household_order", "Input should be a valid list"),
        (
            {"schedule": {"cron": "every monday"}},
            "schedule.cron",
            "cron 'every monday' has 2 fields; give 5: minute hour day-of-month month day-of-week",
        ),
    ],
)
def test_campaign_meta_errors_name_the_model_yaml_and_key(changes, key, reason):
    spec, findings = parse_campaign_spec("winter", {**BASE_META, **changes}, "models/campaigns/_c.yml")
    assert spec is None
    assert [str(f) for f in findings] == [
        f"error: models/campaigns/_c.yml: models.winter.config.meta.direct_mail.{key}: {reason}"
    ]


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("99 99 * * *", "cron '99 99 * * *' is not valid: Bad minute"),
        ("0 24 * * *", "cron '0 24 * * *' is not valid: Bad hour"),
        ("*/0 6 * * *", "cron '*/0 6 * * *' is not valid: Bad minute"),
        ("0 6 31 2 *", "cron '0 6 31 2 *' never fires: 31 February never occurs"),
        ("0 6 31 APR,6 *", "cron '0 6 31 APR,6 *' never fires: 31 April or June never occurs"),
        ("0 6 * * 8", "cron '0 6 * * 8' is not valid: Bad day-of-week"),
        (
            "0 0 6 * * 1",
            "cron '0 0 6 * * 1' has 6 fields; give 5: minute hour day-of-month month day-of-week",
        ),
        ("@daily", "cron '@daily' has 1 fields; give 5: minute hour day-of-month month day-of-week"),
        (
            "0 6 * * 5L",
            "cron '0 6 * * 5L': day-of-week '5L': '<day>L' (last <day> of the month) is not supported",
        ),
        (
            "0 6 LW * *",
            "cron '0 6 LW * *': day-of-month 'LW': of the L and W forms only 'L' (the last day) is supported",
        ),
        (
            "0 6 1 * 1#2",
            "cron '0 6 1 * 1#2': day-of-week '1#2': '<day>#<n>' is supported only alone and with day-of-month '*'",
        ),
        ("0 6 30 FEB MON", "cron '0 6 30 FEB MON': day-of-month '30' never occurs in month 'FEB'"),
        ("0 6 */10 FEB 0#5", "cron '0 6 */10 FEB 0#5' never fires"),
    ],
)
def test_a_cron_the_scheduler_cannot_read_names_file_key_and_reason(cron, reason):
    meta = {**BASE_META, "schedule": {"cron": cron, "timezone": "Europe/Paris"}}
    spec, findings = parse_campaign_spec("winter", meta, "models/campaigns/_c.yml")
    assert spec is None
    assert [str(f) for f in findings] == [
        f"error: models/campaigns/_c.yml: models.winter.config.meta.direct_mail.schedule.cron: {reason}"
    ]


ACCEPTED_CRONS = [
    "0 6 * * 1",
    "30 7 1 * *",
    "*/15 9-17 * * MON-FRI",
    "0 6 L * *",
    "0 6 1,15 * *",
    "0 8 * * 1#2",
    "0 6 * JAN-MAR sun",
    "0 0 29 2 *",
    "5,35 */2 * * 0-6",
]


@pytest.mark.parametrize("cron", ACCEPTED_CRONS)
def test_a_cron_validate_accepts_is_one_prefect_schedules(cron):
    from datetime import UTC, datetime

    from prefect._vendor.croniter import croniter
    from prefect.client.schemas.schedules import CronSchedule

    meta = {**BASE_META, "schedule": {"cron": cron, "timezone": "Europe/Paris"}}
    spec, findings = parse_campaign_spec("winter", meta, "models/c.yml")
    assert findings == [] and spec.schedule.cron == cron
    CronSchedule(cron=cron, timezone="Europe/Paris")  # what `serve` builds: raises on a cron it refuses
    assert croniter(cron, datetime.now(UTC)).get_next(datetime) is not None  # how it finds the next run


def _campaign(**changes) -> Campaign:
    spec, findings = parse_campaign_spec("winter", {**BASE_META, **changes}, "models/c.yml")
    assert not findings
    return Campaign("winter", spec, "model.p.winter", "main.winter", "models/c.yml")


def test_duplicate_labels_ignore_case():
    findings = check_columns(_campaign(), ["profile_id", "City", "city"])
    assert [str(f) for f in findings] == [
        "error: models/c.yml: models.winter: duplicate column label 'city' (labels must be unique, ignoring case)"
    ]


def test_fifty_one_written_columns_are_refused_but_fifty_plus_identity_pass():
    columns = ["profile_id", *(f"c{i}" for i in range(50))]
    assert check_columns(_campaign(), columns) == []
    findings = check_columns(_campaign(), [*columns, "c50"])
    assert [f.reason for f in findings] == ["51 columns would be written; a file has 1 to 50"]


def test_settings_naming_missing_columns_are_refused():
    campaign = _campaign(
        identity="customer_id",
        sort_by=["zip desc"],
        address_columns={"lines": ["street"], "postal_code": "zip", "city": "town", "country": "cc"},
    )
    reasons = [f.reason for f in check_columns(campaign, ["street", "town", "cc"])]
    assert "identity column 'customer_id' is not a column of the model" in reasons
    assert "sort column 'zip' is not a column of the model" in reasons
    assert "address column 'zip' is not a written column" in reasons


def test_a_blank_sort_key_is_a_missing_column_not_a_crash():
    campaign = _campaign(sort_by=["  ", "city desc"])
    assert [k.column for k in campaign.spec.sort_keys] == ["", "city"]
    reasons = [f.reason for f in check_columns(campaign, ["profile_id", "city"])]
    assert reasons == ["sort column '' is not a column of the model"]


def test_household_order_without_household_is_refused():
    _, findings = parse_campaign_spec("winter", {**BASE_META, "household_order": ["ltv desc"]}, "m.yml")
    assert [str(f) for f in findings] == [
        "error: m.yml: models.winter.config.meta.direct_mail: household_order is only used with household: true"
    ]


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        (
            "suppression",
            {"model": "dnm", "identity": None, "household_key": None},
            "error: direct_mail.yml: suppression: give identity, household_key or both: what a suppression "
            "entry matches on",
        ),
        (
            "addresses",
            {"model": "a", "valid": "is_valid"},
            "error: direct_mail.yml: addresses.valid: unknown key (did you mean 'validate'?)",
        ),
        (
            "addresses",
            {"identity": "profile_id"},
            "error: direct_mail.yml: addresses.model: required key is missing",
        ),
    ],
)
def test_address_and_suppression_sources_are_checked(tmp_path, section, value, expected):
    document = yaml.safe_load(yaml.safe_dump(VALID))
    document[section] = value
    assert errors_for(tmp_path, document) == [expected]


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [
        ({"holdout_pct": 5}, "holdout_pct", "unknown key (did you mean 'holdout_percent'?)"),
        (
            {"frequncy_cap": {"count": 1, "days": 6}},
            "frequncy_cap",
            "unknown key (did you mean 'frequency_cap'?)",
        ),
        (
            {
                "address_columns": {
                    "lines": ["a"],
                    "postal_code": "p",
                    "city": "c",
                    "country": "k",
                    "regoin": "r",
                }
            },
            "address_columns.regoin",
            "unknown key (did you mean 'region'?)",
        ),
        (
            {"audience": "new_entrant"},
            "audience",
            "Input should be 'all' or 'new_entrants' (did you mean 'new_entrants'?)",
        ),
        ({"colour": "blue"}, "colour", "unknown key"),  # nothing close: no suggestion
        (
            {"schedule": {"cron": "0 6 * * 1", "timezone": "Europe/Pars"}},
            "schedule.timezone",
            "unknown timezone 'Europe/Pars' (did you mean 'Europe/Paris'?)",
        ),
    ],
)
def test_a_mistyped_campaign_key_or_value_gets_the_closest_accepted_one(changes, key, reason):
    spec, findings = parse_campaign_spec("winter", {**BASE_META, **changes}, "models/c.yml")
    assert spec is None
    assert [str(f) for f in findings] == [
        f"error: models/c.yml: models.winter.config.meta.direct_mail.{key}: {reason}"
    ]


def test_a_cron_problem_does_not_hide_a_time_zone_typo():
    meta = {**BASE_META, "schedule": {"cron": "99 6 * * *", "timezone": "Europe/Pariss"}}
    assert [str(f) for f in parse_campaign_spec("winter", meta, "models/c.yml")[1]] == [
        "error: models/c.yml: models.winter.config.meta.direct_mail.schedule.cron: cron '99 6 * * *' is not "
        "valid: Bad minute",
        "error: models/c.yml: models.winter.config.meta.direct_mail.schedule.timezone: unknown timezone "
        "'Europe/Pariss' (did you mean 'Europe/Paris'?)",
    ]


def test_a_mistyped_direct_mail_yml_key_or_value_gets_the_closest_accepted_one(tmp_path):
    document = {
        **VALID,
        "configurations": {
            name: {**values, **({"encoding": "cp1525", "escape_formula": True} if name == "csv" else {})}
            for name, values in VALID["configurations"].items()
        },
    }
    (tmp_path / "direct_mail.yml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    assert [str(f) for f in raised.value.findings] == [
        "error: direct_mail.yml: configurations.csv.encoding: Input should be 'utf-8', 'utf-8-sig', 'cp1252' "
        "or 'latin-1' (did you mean 'cp1252'?)",
        "error: direct_mail.yml: configurations.csv.escape_formula: unknown key (did you mean 'escape_formulas'?)",
    ]
