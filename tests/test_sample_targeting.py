"""The targeting rules end to end on the sample project: dbt's address validation and suppression models,
the runner's exclusions, the report, the exclusions model, and a proof for test profiles."""

from __future__ import annotations

import contextlib
import json

import duckdb

from tests.test_sample_project import RUN_TIME, cli, landing_files, query

NEXT_DAY = "2026-11-24T06:00:00Z"


def dbt(project, *args: str) -> None:
    from dbt.cli.main import dbtRunner

    from directmail.builder import release_connections

    with contextlib.chdir(project):  # profiles.yml's warehouse path is relative to the project
        result = dbtRunner().invoke(
            [*args, "--project-dir", str(project), "--profiles-dir", str(project), "--log-level", "none"]
        )
    release_connections()
    assert result.success, result.exception


def exclusions(project, run_id: str) -> dict[str, tuple[str, str | None]]:
    rows = query(
        project, f"select profile_id, reason, detail from direct_mail.exclusions where run_id = '{run_id}'"
    )
    return {profile: (reason, detail) for profile, reason, detail in rows}


def test_sample_runs_exclude_with_reasons_and_details(sample_project):
    for campaign in ("winter_catalog", "lapsed_postcard"):
        result = cli(sample_project, "run", campaign, "--run-time", RUN_TIME)
        assert result.exit_code == 0, result.output
    winter = exclusions(sample_project, f"winter_catalog@{RUN_TIME}")
    lapsed = exclusions(sample_project, f"lapsed_postcard@{RUN_TIME}")

    # Suppression: by profile (do_not_mail, deceased), and by an address spelled otherwise than in the
    # CRM ('GROSSE STRASSE 119, hinterhaus, KÖLN' is P00000150's 'Große Straße 119, Hinterhaus, Köln').
    assert winter["P00000016"] == ("suppressed", "do_not_mail")
    assert winter["P00000025"] == ("suppressed", "deceased")
    assert lapsed["P00000030"] == ("suppressed", "do_not_mail")
    assert lapsed["P00000150"] == ("suppressed", "moved_away")

    # Invalid addresses: exactly the targeted profiles the dbt model calls invalid, with its codes.
    invalid = dict(
        query(
            sample_project,
            "select w.profile_id, a.address_errors from main.winter_catalog as w "
            "join main.int_profiles_addressed as a using (profile_id) "
            "left join main.stg_crm__consents as c "
            "  on c.profile_id = w.profile_id and c.marketing_action = 'direct_mail' "
            "left join main.int_suppressions_keyed as s on s.profile_id = w.profile_id "
            "where not a.is_valid_address and coalesce(c.consent_value, '') <> 'n' and s.list_name is null",
        )
    )
    assert invalid and {p: ("invalid_address", e) for p, e in invalid.items()} == {
        p: v for p, v in winter.items() if v[0] == "invalid_address"
    }
    codes = {code for errors in invalid.values() for code in errors.split(";")}
    assert {"postal_code:invalid", "city:required"} <= codes

    # Households: one postcard per normalized address, the highest lifetime value kept.
    households = query(
        sample_project,
        "select e.profile_id, e.detail, m.lifetime_value, r.lifetime_value, "
        "m.household_key = r.household_key "
        "from direct_mail.exclusions as e "
        "join main.int_profiles_qualified as m on m.profile_id = e.profile_id "
        "join main.int_profiles_qualified as r on r.profile_id = e.detail "
        "where e.reason = 'household_duplicate'",
    )
    assert households
    for _member, _representative, member_value, representative_value, same_home in households:
        assert same_home and representative_value >= member_value
    shared = query(
        sample_project,
        "select a.household_key, count(*) from direct_mail.sends as s "
        "join main.int_profiles_addressed as a using (profile_id) "
        f"where s.run_id = 'lapsed_postcard@{RUN_TIME}' and not s.is_holdout group by 1 having count(*) > 1",
    )
    assert shared == []

    # Seed addresses: at the end of every file, not in the sends.
    files = landing_files(sample_project)
    winter_files = [name for name in files if name.startswith("outbound/") and name.endswith(".csv")]
    assert len(winter_files) == 2
    for name in winter_files:
        lines = files[name].decode().splitlines()
        assert lines[-2].startswith("Service,Qualité Courrier,10 rue de la Paix,Bâtiment A,75002,PARIS,,FR,")
        assert lines[-1].startswith("Quality,Mail Desk,1 Poultry,,EC2R 8EJ,LONDON,,GB,")
    postcard = next(v for k, v in files.items() if k.startswith("postcards/") and k.endswith(".txt"))
    assert postcard.decode("cp1252").endswith(
        "PROOF-FR;Bonjour Service Qualité;Service Qualité Courrier;10 rue de la Paix;Bâtiment A;75002;"
        "PARIS;FR;;\r\nPROOF-GB;Dear Quality Desk;Mail Quality Desk;1 Poultry;;EC2R 8EJ;LONDON;GB;;\r\n"
        "END OF FILE\r\n"
    )
    assert query(sample_project, "select count(*) from direct_mail.sends where profile_id like 'PROOF%'") == [
        (0,)
    ]
    assert query(sample_project, "select campaign, seed_rows from direct_mail.runs order by 1") == [
        ("lapsed_postcard", 2),
        ("winter_catalog", 4),
    ]

    # The report shows counts per address code and per list; the dbt model shows the same per run.
    report = cli(sample_project, "report", "winter_catalog")
    assert report.exit_code == 0
    assert "postal_code:invalid" in report.output and "do_not_mail" in report.output
    dbt(sample_project, "build", "--select", "+campaign_exclusions")
    per_reason = dict(
        query(
            sample_project,
            f"select reason, profiles from main.campaign_exclusions where run_id = 'winter_catalog@{RUN_TIME}'",
        )
    )
    recorded = query(
        sample_project, f"select excluded from direct_mail.runs where run_id = 'winter_catalog@{RUN_TIME}'"
    )
    assert per_reason == {k: v for k, v in json.loads(recorded[0][0]).items() if v}


def test_frequency_cap_excludes_what_was_mailed_within_the_window(sample_project):
    assert cli(sample_project, "run", "winter_catalog", "--run-time", RUN_TIME).exit_code == 0
    result = cli(sample_project, "run", "winter_catalog", "--run-time", NEXT_DAY)
    assert result.exit_code == 0, result.output
    capped = query(
        sample_project,
        f"select profile_id, detail from direct_mail.exclusions "
        f"where run_id = 'winter_catalog@{NEXT_DAY}' and reason = 'frequency_cap'",
    )
    assert {detail for _, detail in capped} == {"1 in the last 6 days"}
    mailed_first = query(
        sample_project,
        f"select profile_id from direct_mail.sends where run_id = 'winter_catalog@{RUN_TIME}' "
        "and file_name is not null",
    )
    targeted_next = query(
        sample_project,
        f"select profile_id from direct_mail.sends where run_id = 'winter_catalog@{NEXT_DAY}' union all "
        f"select profile_id from direct_mail.exclusions where run_id = 'winter_catalog@{NEXT_DAY}'",
    )
    expected = {p for (p,) in mailed_first} & {p for (p,) in targeted_next}
    assert len(expected) > 500
    assert {p for p, _ in capped} == expected


def test_preview_renders_test_profiles_as_a_proof_without_touching_history(sample_project):
    assert cli(sample_project, "run", "lapsed_postcard", "--run-time", RUN_TIME).exit_code == 0
    before = query(sample_project, "select count(*) from main.lapsed_postcard")
    history = query(
        sample_project,
        "select (select count(*) from direct_mail.runs), (select count(*) from direct_mail.sends)",
    )

    result = cli(sample_project, "preview", "lapsed_postcard", "--test-profiles", "--run-time", RUN_TIME)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Lapsed customers postcard",
        "profile_id;Greeting;Name;Street;Address 2;Postal Code;City;Country;Last order;Lifetime value",
        "T0000002;Hallo Jürgen;Jürgen Prüfer;Unter den Linden 77;;10117;BERLIN;DE;2025-01-10;80.00",
        "T0000003;Dear Oliver;Oliver Proof;10 Downing Street;;SW1A 2AA;LONDON;GB;2024-12-05;45.50",
        "PROOF-FR;Bonjour Service Qualité;Service Qualité Courrier;10 rue de la Paix;Bâtiment A;75002;PARIS;FR;;",
        "PROOF-GB;Dear Quality Desk;Mail Quality Desk;1 Poultry;;EC2R 8EJ;LONDON;GB;;",
        "END OF FILE",
    ]
    assert "test profile T0000008 not in the file: no_postal_consent" in result.stderr

    winter = cli(sample_project, "preview", "winter_catalog", "--test-profiles", "--run-time", RUN_TIME)
    assert winter.exit_code == 0, winter.output
    assert 'María,Prueba,"Calle Mayor, 1",3º B,28013,MADRID,M,ES,platinum' in winter.stdout
    assert "test profile T0000007 not in the file: invalid_address (postal_code:invalid)" in winter.stderr

    assert query(sample_project, "select count(*) from main.lapsed_postcard") == before
    assert (
        query(
            sample_project,
            "select (select count(*) from direct_mail.runs), (select count(*) from direct_mail.sends)",
        )
        == history
    )
    assert query(sample_project, "select count(*) from main_test_profiles.stg_crm__profiles") == [(8,)]


def test_address_validation_is_incremental(sample_project):
    """A second build validates only the new and changed addresses; unchanged ones keep their result."""
    dbt(sample_project, "build", "--select", "+int_addresses_validated", "--exclude-resource-type", "test")
    before = dict(query(sample_project, "select address_key, validated_at from main.int_addresses_validated"))
    with duckdb.connect(str(sample_project / "warehouse" / "directmail.duckdb")) as con:
        con.execute("update raw_crm.profiles set postal_code = '69002' where profile_id = 'P00000001'")
        con.execute(
            "insert into raw_crm.profiles (profile_id, address_line_1, postal_code, city, country_code) "
            "values ('P09999999', 'Dam 1', '1012 JS', 'Amsterdam', 'NL')"
        )
    dbt(sample_project, "build", "--select", "int_addresses_validated+1", "--exclude-resource-type", "test")
    after = query(
        sample_project, "select address_key, validated_at, is_valid_address from main.int_addresses_validated"
    )
    fresh = [key for key, validated_at, _ in after if before.get(key) != validated_at]
    assert len(fresh) == 2
    assert all(before[key] == validated_at for key, validated_at, _ in after if key not in fresh)
    assert query(
        sample_project,
        "select normalized_city, is_valid_address from main.int_profiles_addressed where profile_id = 'P09999999'",
    ) == [("AMSTERDAM", True)]


def test_a_seed_list_must_name_a_dbt_seed(sample_project):
    models = sample_project / "models" / "campaigns" / "_campaigns__models.yml"
    models.write_text(
        models.read_text().replace("seed_list: proof_addresses", "seed_list: int_orders_summarized", 1)
    )
    result = cli(sample_project, "validate")
    assert result.exit_code == 1
    assert (
        "error: models/campaigns/_campaigns__models.yml: "
        "models.winter_catalog.config.meta.direct_mail.seed_list: 'int_orders_summarized' is not a seed of the "
        "dbt project (seed lists are dbt seeds)"
    ) in " ".join(result.output.split())
