"""A new campaign on a freshly generated sample: its build takes only the tests of what it builds.

The campaign reads a seed alone, so the staging models it does not need (stg_crm__orders) are never built
in this warehouse; a test on them must not be part of its build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_sample_project

SEED = """\
profile_id,recipient,message
P00000001,First customer,Thank you for your first order
P00000002,Second customer,Thank you for your loyalty
P00000003,Third customer,"Thank you, see you soon"
P00000004,Fourth customer,Thank you for your feedback
"""

MODEL = """\
with

cards as (

    select * from {{ ref('thank_you_cards') }}

)

select
    profile_id,
    recipient,
    message

from cards
"""

YAML = """\
version: 2

models:
  - name: thank_you_card
    description: Thank-you cards for a hand-picked list of customers (a seed).
    config:
      materialized: table
      meta:
        direct_mail:
          configuration: mailhouse_csv
          status: active
          file_name: outbound/thank_you_card.csv
          identity: profile_id
    columns:
      - name: profile_id
        data_tests: [unique, not_null]
"""

# P00000002 refused direct mail in the sample CRM (consent 'n'); P00000003's empty consent counts as yes.
EXPECTED = (
    b"recipient,message\n"
    b"First customer,Thank you for your first order\n"
    b'Third customer,"Thank you, see you soon"\n'
    b"Fourth customer,Thank you for your feedback\n"
)


@pytest.mark.slow
def test_new_campaign_over_a_seed_runs_on_a_fresh_sample(tmp_path: Path):
    project = copy_sample_project(tmp_path / "project")
    (project / "seeds" / "thank_you_cards.csv").write_text(SEED)
    (project / "models" / "campaigns" / "thank_you_card.sql").write_text(MODEL)
    (project / "models" / "campaigns" / "_thank_you_card.yml").write_text(YAML)
    env = {k: v for k, v in os.environ.items() if k not in ("DIRECTMAIL_WAREHOUSE", "PREFECT_API_URL")}
    directmail = Path(sys.executable).parent / "directmail"

    result = subprocess.run(
        [str(directmail), "--project-dir", str(project), "run", "thank_you_card"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    outbound = project / "landing" / "outbound"
    assert (outbound / "thank_you_card.csv").read_bytes() == EXPECTED
    manifest = json.loads((outbound / "thank_you_card.manifest.json").read_bytes())
    assert manifest["total_rows"] == 3
    assert manifest["files"][0]["name"] == "thank_you_card.csv"
    assert manifest["files"][0]["bytes"] == len(EXPECTED)
    with duckdb.connect(str(project / "warehouse" / "directmail.duckdb"), read_only=True) as con:
        tables = {
            name for (name,) in con.execute("select table_name from information_schema.tables").fetchall()
        }
    assert "thank_you_card" in tables and "stg_crm__orders" not in tables  # the case this test is about
