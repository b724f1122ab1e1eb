"""The JSON Schemas editors check the project's YAML with while it is typed (schemas/), generated from
the same pydantic models `validate` reads the files into, so the two cannot drift.

`python -m directmail.jsonschemas` writes them; tests/test_json_schemas.py fails when they are stale.
Some checks need more than one file or the warehouse (a configuration's routing exists, a model's
columns): those stay `validate`'s; everything about one key's type, range and spelling is in the schema.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from directmail.campaign import CampaignSpec
from directmail.config import DirectMailConfig

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
FOLDER = Path(__file__).resolve().parent.parent / "schemas"
DIRECT_MAIL = "direct_mail.schema.json"
CAMPAIGN = "campaign.schema.json"


def direct_mail_schema() -> dict[str, Any]:
    schema = DirectMailConfig.model_json_schema(mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://directmail.dev/schemas/{DIRECT_MAIL}",
        **schema,
        "title": "direct_mail.yml",
        "description": "Routings, configurations and sources of a directmail project "
        "(docs/direct-mail-yml.md).",
    }


def campaign_schema() -> dict[str, Any]:
    """A dbt properties file (models/**/*.yml) whose models may carry `meta.direct_mail`, under `config:`
    or at the model's top level; every other key of the file is dbt's and left open."""
    spec = CampaignSpec.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    definitions = spec.pop("$defs", {})
    definitions["CampaignSpec"] = spec
    meta: dict[str, Any] = {"type": "object", "properties": {"direct_mail": {"$ref": "#/$defs/CampaignSpec"}}}
    model = {
        "type": "object",
        "properties": {"config": {"type": "object", "properties": {"meta": meta}}, "meta": meta},
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://directmail.dev/schemas/{CAMPAIGN}",
        "title": "dbt properties with meta.direct_mail",
        "description": "A campaign is a dbt model whose meta.direct_mail says how its rows become files "
        "(docs/campaigns.md).",
        "type": "object",
        "properties": {"models": {"type": "array", "items": model}},
        "$defs": definitions,
    }


def rendered() -> dict[str, str]:
    """Each schema file's text, as committed."""
    return {
        name: json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        for name, schema in ((DIRECT_MAIL, direct_mail_schema()), (CAMPAIGN, campaign_schema()))
    }


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (FOLDER / name).write_text(text, encoding="utf-8")
        print(f"wrote schemas/{name}", file=sys.stderr)


if __name__ == "__main__":
    main()
