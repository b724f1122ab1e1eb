"""Build a directmail Project over a DuckDB file without dbt, to test the runner's bytes quickly.

The campaign table is created with plain SQL; the Project is assembled from the same validated models
the real loader uses (CampaignSpec, DirectMailConfig), so only the dbt parse/build is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import duckdb

from directmail.builder import DbtProject, TargetInfo
from directmail.campaign import Campaign, parse_campaign_spec
from directmail.config import DirectMailConfig
from directmail.pipeline import CampaignRun, RunOptions, parse_run_time
from directmail.project import NodeRef, Project

RUN_TIME = "2026-11-23T06:00:00Z"


def make_config(
    configuration: dict | None = None,
    landing: str = "landing",
    routing: dict | None = None,
    extra: dict | None = None,
) -> DirectMailConfig:
    """A config with a `landing` folder, plus a `remote` routing (used by the configuration) if given."""
    routings = {"landing": {"type": "local", "directory": landing}}
    if routing is not None:
        routings["remote"] = routing
    used = "remote" if routing is not None else "landing"
    return DirectMailConfig.model_validate(
        {
            "routing": routings,
            "configurations": {"test": {"routing": used, **(configuration or {})}},
            "consent": {"model": "consents"},
            **(extra or {}),
        }
    )


@dataclass
class Kit:
    directory: Path

    @property
    def database(self) -> Path:
        return self.directory / "warehouse.duckdb"

    def sql(self, statement: str) -> list[tuple]:
        with duckdb.connect(str(self.database)) as con:
            return con.execute(statement).fetchall()

    def project(
        self,
        meta: dict,
        configuration: dict | None = None,
        table: str = "campaign",
        routing: dict | None = None,
        extra: dict | None = None,
        seeds: list[str] = (),
    ) -> Project:
        """`extra`: more direct_mail.yml sections (addresses, suppression), each naming a table in main;
        `seeds`: tables in main usable as seed lists."""
        return self.campaigns_project({table: meta}, configuration, routing, extra, seeds)

    def campaigns_project(
        self,
        metas: dict[str, dict],
        configuration: dict | None = None,
        routing: dict | None = None,
        extra: dict | None = None,
        seeds: list[str] = (),
    ) -> Project:
        """A project of several campaigns, each over the table in main named like it, all under the one
        configuration: campaigns whose drops land in one folder (see `project` for the other keys)."""
        campaigns = {}
        for table, meta in metas.items():
            spec, findings = parse_campaign_spec(table, {"configuration": "test", **meta}, "models/test.yml")
            assert not findings, findings
            campaigns[table] = Campaign(
                table, spec, f"model.test.{table}", f"main.{table}", "models/test.yml"
            )
        dbt = DbtProject(self.directory)
        dbt._target_info = TargetInfo("duckdb", "test", SimpleNamespace(path=str(self.database)))
        self.sql(
            "create table if not exists main.consents (profile_id varchar, marketing_action varchar, consent_value varchar)"
        )
        sources = {
            key: NodeRef(value["model"], f"main.{value['model']}", f"model.test.{value['model']}")
            for key, value in (extra or {}).items()
            if "model" in value  # a source; other sections (returns) are settings
        }
        return Project(
            self.directory,
            dbt,
            make_config(configuration, routing=routing, extra=extra),
            campaigns,
            "main.consents",
            None,
            sources=sources,
            seeds={name: NodeRef(name, f"main.{name}", f"seed.test.{name}") for name in seeds},
        )

    def run(self, project: Project, campaign: str = "campaign", run_time: str = RUN_TIME, **options):
        run = CampaignRun(project, campaign, RunOptions(parse_run_time(run_time), skip_build=True, **options))
        return run.execute()

    def rows(self, count: int, table: str = "campaign", padding: int = 0) -> None:
        """A campaign table of `count` distinct people (about 35 + `padding` bytes a row once written)."""
        extra = f", repeat('x', {padding}) as remark" if padding else ""
        self.sql(
            f"create or replace table {table} as select 'P' || lpad(i::varchar, 9, '0') as profile_id, "
            f"'Name ' || i as name, i || ' Mail Street' as street, 'FR' as country_code{extra} "
            f"from range({count}) t(i)"
        )

    def take_drop(self) -> dict[str, bytes]:
        """What a mail house does with a complete drop: take every file out of the landing folder."""
        taken = self.landing()
        for name in taken:
            (self.directory / "landing" / name).unlink()
        return taken

    def landing(self) -> dict[str, bytes]:
        root = self.directory / "landing"
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
