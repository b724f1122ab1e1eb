"""The editor schemas (schemas/) are the pydantic models' own, accept the sample, and refuse what
`validate` refuses of one key: an unknown or misspelt key, a wrong type, a value out of range or outside
its choices, a secret written inline."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from directmail.jsonschemas import CAMPAIGN, DIRECT_MAIL, FOLDER, rendered

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN_FILES = sorted((ROOT / "models").rglob("*.yml"))


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = yaml.safe_load((FOLDER / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schemas_are_generated_from_the_models():
    stale = [name for name, text in rendered().items() if (FOLDER / name).read_text(encoding="utf-8") != text]
    assert not stale, f"schemas/{', '.join(stale)} out of date: run `python -m directmail.jsonschemas`"


def test_the_sample_files_name_their_schema_and_pass_it():
    assert (
        (ROOT / "direct_mail.yml")
        .read_text()
        .startswith("# yaml-language-server: $schema=schemas/direct_mail.schema.json\n")
    )
    assert (
        list(validator(DIRECT_MAIL).iter_errors(yaml.safe_load((ROOT / "direct_mail.yml").read_text()))) == []
    )
    campaigns = ROOT / "models" / "campaigns" / "_campaigns__models.yml"
    assert campaigns.read_text().startswith(
        "# yaml-language-server: $schema=../../schemas/campaign.schema.json\n"
    )
    checker = validator(CAMPAIGN)
    for path in CAMPAIGN_FILES:  # every properties file of the sample: dbt's own keys stay open
        assert list(checker.iter_errors(yaml.safe_load(path.read_text()))) == [], path


def _sample_config() -> dict:
    return yaml.safe_load((ROOT / "direct_mail.yml").read_text())


def _set(document: dict, path: str, value) -> dict:
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    target = changed
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[last] = value
    return changed


CONFIG_MISTAKES = [
    ("configurations.mailhouse_csv.seperator", ";"),  # unknown key
    ("configurations.mailhouse_csv.split_threshold", 0),
    ("configurations.mailhouse_csv.encoding", "cp1525"),
    ("configurations.mailhouse_csv.checksums", "sometimes"),
    ("configurations.mailhouse_csv.on_existing", "overwrite"),
    ("routing.landing.type", "ftp"),
    ("routing.landing.directory", None),
]


@pytest.mark.parametrize(("path", "value"), CONFIG_MISTAKES)
def test_direct_mail_yml_mistakes_validate_refuses_the_schema_refuses_too(tmp_path, path, value):
    from directmail.config import load_config
    from directmail.errors import ConfigError

    document = _set(_sample_config(), path, value)
    (tmp_path / "direct_mail.yml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError):
        load_config(tmp_path)
    assert list(validator(DIRECT_MAIL).iter_errors(document)), f"the schema accepts {path}: {value!r}"


def test_an_inline_secret_is_refused_by_the_schema_as_by_validate():
    document = _sample_config()
    document["routing"]["drop"] = {
        "type": "sftp",
        "host": "mail.example.com",
        "username": "u",
        "password": "hunter2",
        "known_hosts": "known_hosts",
    }
    assert list(validator(DIRECT_MAIL).iter_errors(document))
    document["routing"]["drop"]["password"] = "${MAILHOUSE_PASSWORD}"
    assert list(validator(DIRECT_MAIL).iter_errors(document)) == []


CAMPAIGN_MISTAKES = [
    ({"holdout_pct": 5}),
    ({"holdout_percent": 51}),
    ({"status": "paused"}),
    ({"audience": "new_entrant"}),
    ({"frequency_cap": {"count": 2}}),
    ({"address_columns": {"lines": [], "postal_code": "p", "city": "c", "country": "k"}}),
    ({"column_widths": {"name": 0}}),
]


@pytest.mark.parametrize("changes", CAMPAIGN_MISTAKES)
def test_campaign_meta_mistakes_validate_refuses_the_schema_refuses_too(changes):
    from directmail.campaign import parse_campaign_spec

    meta = {"configuration": "mailhouse_csv", "file_name": "out.csv", **changes}
    spec, findings = parse_campaign_spec("winter", meta, "models/c.yml")
    assert spec is None and findings
    properties = {"version": 2, "models": [{"name": "winter", "config": {"meta": {"direct_mail": meta}}}]}
    assert list(validator(CAMPAIGN).iter_errors(properties)), f"the schema accepts {changes}"
    top_level = {"version": 2, "models": [{"name": "winter", "meta": {"direct_mail": meta}}]}
    assert list(validator(CAMPAIGN).iter_errors(top_level))
