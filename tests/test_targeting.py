"""Targeting rules in the runner: suppression, invalid addresses, frequency caps, households, seed rows.

Each test builds the campaign and the rule's source tables with plain SQL in a DuckDB file, runs the real
pipeline, and checks the file bytes and the history rows (sends, exclusions, runs).
"""

from __future__ import annotations

import json

import pytest

from directmail.errors import ConfigError, ExtractInvalid

ADDRESSED = """
create table campaign as select * from (values
    ('P1', 'Ann',  '1 Rue A', '75011', 'PARIS', 'FR', 10.0),
    ('P2', 'Bob',  '1 rue a', '75011', 'Paris', 'FR', 90.0),
    ('P3', 'Cid',  '2 Rue B', '75011', 'PARIS', 'FR', 50.0),
    ('P4', 'Dee',  '3 Rue C', '7501',  'PARIS', 'FR', 20.0),
    ('P5', 'Eve',  '4 Rue D', '75011', 'PARIS', 'FR', 30.0),
    ('P6', 'Fay',  '5 Rue E', '75011', 'PARIS', 'FR', 40.0)
) as t(profile_id, name, street, postal_code, city, country_code, lifetime_value);
create table addresses as select * from (values
    ('P1', null, 'h1'),
    ('P2', '', 'h1'),
    ('P3', null, 'h3'),
    ('P4', 'postal_code:invalid;region:required', null),
    ('P5', null, 'h5')
) as t(profile_id, address_errors, household_key);
create table suppressions as select * from (values
    ('deceased', 'P3', null),
    ('moved_away', null, 'h5')
) as t(list_name, profile_id, household_key)
"""

ADDRESS_COLUMNS = {
    "lines": ["street"],
    "postal_code": "postal_code",
    "city": "city",
    "country": "country_code",
}
HOUSEHOLD_BY_VALUE = {
    "file_name": "out.csv",
    "address_columns": ADDRESS_COLUMNS,
    "household": True,
    "household_order": ["lifetime_value desc"],
}
SOURCES = {
    "addresses": {"model": "addresses"},
    "suppression": {"model": "suppressions"},
}


def exclusions(kit) -> dict[str, tuple[str, str | None]]:
    rows = kit.sql("select profile_id, reason, detail from direct_mail.exclusions order by profile_id")
    return {profile: (reason, detail) for profile, reason, detail in rows}


def test_suppression_invalid_address_and_household_are_excluded_with_their_details(kit):
    kit.sql(ADDRESSED)
    project = kit.project(HOUSEHOLD_BY_VALUE, extra=SOURCES)
    record = kit.run(project)

    assert kit.landing()["out.csv"] == (
        b"name,street,postal_code,city,country_code,lifetime_value\nBob,1 rue a,75011,Paris,FR,90.0\n"
    )
    assert exclusions(kit) == {
        "P1": ("household_duplicate", "P2"),  # same household as P2, who has the higher lifetime value
        "P3": ("suppressed", "deceased"),  # by profile
        "P4": ("invalid_address", "postal_code:invalid;region:required"),
        "P5": ("suppressed", "moved_away"),  # by normalized address
        "P6": ("invalid_address", "address:not_validated"),  # no row in the addresses model
    }
    assert record.excluded["household_duplicate"] == 1 and record.excluded["suppressed"] == 2
    assert record.exclusion_details == {
        "invalid_address": {"address:not_validated": 1, "postal_code:invalid": 1, "region:required": 1},
        "suppressed": {"deceased": 1, "moved_away": 1},
    }
    assert kit.sql("select profile_id from direct_mail.sends") == [("P2",)]
    stored = kit.sql("select exclusion_details from direct_mail.runs")[0][0]
    assert json.loads(stored) == record.exclusion_details


def test_household_representative_defaults_to_the_identity(kit):
    kit.sql(ADDRESSED)
    project = kit.project(
        {"file_name": "out.csv", "address_columns": ADDRESS_COLUMNS, "household": True}, extra=SOURCES
    )
    kit.run(project)
    assert exclusions(kit)["P2"] == ("household_duplicate", "P1")


def test_an_excluded_member_never_takes_the_household_piece(kit):
    """The representative is chosen among the profiles that may be mailed."""
    kit.sql(ADDRESSED)
    project = kit.project(HOUSEHOLD_BY_VALUE, extra=SOURCES)
    kit.sql("insert into consents values ('P2', 'direct_mail', 'n')")
    kit.run(project)
    assert kit.sql("select profile_id from direct_mail.sends") == [("P1",)]
    assert exclusions(kit)["P2"] == ("no_postal_consent", None)


def test_household_without_an_addresses_source_groups_the_address_columns(kit):
    kit.sql(ADDRESSED)
    project = kit.project({"file_name": "out.csv", "address_columns": ADDRESS_COLUMNS, "household": True})
    record = kit.run(project)
    # '1 Rue A, PARIS' and '1 rue a, Paris' are one delivery point once case and spaces are ignored.
    assert exclusions(kit)["P2"] == ("household_duplicate", "P1")
    assert record.exported == 5


CAMPAIGN = """
create table campaign as select 'P' || i as profile_id, 'Name ' || i as name from range(1, 5) t(i);
create schema if not exists direct_mail;
create table direct_mail.sends (
    run_id varchar, campaign varchar, profile_id varchar, file_name varchar, is_holdout boolean,
    sent_at timestamp
);
insert into direct_mail.sends values
    ('other@1', 'other', 'P1', 'a.csv', false, timestamp '2026-11-01 06:00:00'),
    ('other@2', 'other', 'P1', 'a.csv', false, timestamp '2026-11-10 06:00:00'),
    ('other@0', 'other', 'P2', 'a.csv', false, timestamp '2026-10-01 06:00:00'),
    ('other@2', 'other', 'P2', 'a.csv', false, timestamp '2026-11-10 06:00:00'),
    ('other@1', 'other', 'P3', null, true, timestamp '2026-11-01 06:00:00'),
    ('other@2', 'other', 'P3', 'a.csv', false, timestamp '2026-11-10 06:00:00'),
    ('campaign@2026-11-23T06:00:00Z', 'campaign', 'P4', 'out.csv', false, timestamp '2026-11-23 06:01:00'),
    ('other@2', 'other', 'P4', 'a.csv', false, timestamp '2026-11-10 06:00:00');
-- the runs those sends belong to, as a warehouse from before `sends` became a view recorded them
create table direct_mail.runs (
    run_id varchar not null, campaign varchar not null, run_time timestamp not null, status varchar not null,
    started_at timestamp, finished_at timestamp, targeted bigint, excluded varchar, holdout bigint,
    duplicates_removed bigint, exported bigint, files varchar, configuration varchar, destination varchar,
    attempt integer, message varchar, step_seconds varchar
);
insert into direct_mail.runs (run_id, campaign, run_time, status, attempt)
select distinct run_id, campaign, sent_at, 'delivered', 1 from direct_mail.sends where run_id <> 'other@0'
"""


def test_frequency_cap_counts_pieces_in_the_window_from_the_run_time(kit):
    """P1 got 2 pieces in 30 days: capped. P2's first piece is older than 30 days, P3 was held out once,
    and P4's earlier piece from this same run id (a forced re-delivery) does not count."""
    kit.sql(CAMPAIGN)
    project = kit.project({"file_name": "out.csv", "frequency_cap": {"count": 2, "days": 30}})
    record = kit.run(project, force=True)
    assert exclusions(kit) == {"P1": ("frequency_cap", "2 in the last 30 days")}
    # the tables became views of the committed rows; a send without its run row was kept, under one
    assert kit.sql("select status, message from direct_mail.runs where run_id = 'other@0'") == [
        ("delivered", "recorded from its sends rows: the run row was missing")
    ]
    assert kit.sql("select count(*) from direct_mail.sends where run_id like 'other@%'") == [(7,)]
    assert record.excluded["frequency_cap"] == 1 and record.exported == 3


def test_the_configuration_cap_applies_unless_the_campaign_sets_its_own(kit):
    kit.sql(CAMPAIGN)
    capped = kit.project({"file_name": "out.csv"}, configuration={"frequency_cap": {"count": 1, "days": 30}})
    assert kit.run(capped, force=True).excluded["frequency_cap"] == 4  # each had a piece on 11-10
    looser = kit.project(
        {"file_name": "out.csv", "frequency_cap": {"count": 3, "days": 30}},
        configuration={"frequency_cap": {"count": 1, "days": 30}},
    )
    assert kit.run(looser, force=True).excluded["frequency_cap"] == 0


SEEDED = """
create table campaign as select 'P' || i as profile_id, 'Name ' || i as name, i || ' Mail Street' as street,
    'FR' as country_code from range(1, 6) t(i);
create table proofs as select * from (values
    ('S2', 'Proof desk', 'HQ, 1 Brand Square', 'fr'),
    ('S1', 'Mail room', 'HQ, 2 Brand Square', 'gb')
) as t(seed_id, name, address_line_1, country_code)
"""


def test_seed_rows_end_every_part_and_count_toward_the_split_threshold(kit):
    kit.sql(SEEDED)
    kit.sql("update proofs set country_code = upper(country_code)")
    project = kit.project(
        {
            "file_name": "out.csv",
            "seed_list": "proofs",
            "footer_note": "END",
            "export_identity": True,
            "address_columns": {
                "lines": ["street"],
                "postal_code": "name",
                "city": "name",
                "country": "country_code",
            },
        },
        configuration={"split_threshold": 4},
        seeds=["proofs"],
    )
    record = kit.run(project)
    files = kit.landing()
    seeds = b'S1,Mail room,"HQ, 2 Brand Square",GB\nS2,Proof desk,"HQ, 1 Brand Square",FR\nEND\n'
    header = b"profile_id,name,street,country_code\n"
    assert (
        files["out_001.csv"] == header + b"P1,Name 1,1 Mail Street,FR\nP2,Name 2,2 Mail Street,FR\n" + seeds
    )
    assert (
        files["out_002.csv"] == header + b"P3,Name 3,3 Mail Street,FR\nP4,Name 4,4 Mail Street,FR\n" + seeds
    )
    assert files["out_003.csv"] == header + b"P5,Name 5,5 Mail Street,FR\n" + seeds
    manifest = json.loads(files["out.manifest.json"])
    assert manifest["total_rows"] == 11 and [f["rows"] for f in manifest["files"]] == [4, 4, 3]
    assert (record.exported, record.seed_rows) == (5, 6)
    assert kit.sql("select profile_id, file_name from direct_mail.sends order by 1") == [
        ("P1", "out_001.csv"),
        ("P2", "out_001.csv"),
        ("P3", "out_002.csv"),
        ("P4", "out_002.csv"),
        ("P5", "out_003.csv"),
    ]


def test_seed_rows_are_validated_like_profiles(kit):
    kit.sql(SEEDED)  # lower-case country codes are not ISO 3166-1 alpha-2
    project = kit.project(
        {
            "file_name": "out.csv",
            "seed_list": "proofs",
            "address_columns": {
                "lines": ["street"],
                "postal_code": "name",
                "city": "name",
                "country": "country_code",
            },
        },
        seeds=["proofs"],
    )
    with pytest.raises(ExtractInvalid, match=r"identity S2.*'fr' is not an ISO 3166-1 alpha-2 country code"):
        kit.run(project)
    assert not (kit.directory / "landing" / "out.csv").exists()


def test_a_seed_list_as_big_as_a_part_is_refused(kit):
    kit.sql(SEEDED)
    project = kit.project(
        {"file_name": "out.csv", "seed_list": "proofs"},
        configuration={"split_threshold": 2},
        seeds=["proofs"],
    )
    with pytest.raises(ConfigError) as error:
        kit.run(project)
    assert error.value.findings[0].key == "models.campaign.config.meta.direct_mail.seed_list"
    assert "more than 1 rows" in error.value.findings[0].reason


def test_an_addresses_source_with_two_rows_for_a_profile_stops_the_run(kit):
    kit.sql(ADDRESSED)
    kit.sql("insert into addresses values ('P5', 'postal_code:invalid', 'h9')")
    project = kit.project({"file_name": "out.csv", "address_columns": ADDRESS_COLUMNS}, extra=SOURCES)
    with pytest.raises(ConfigError) as error:
        kit.run(project)
    finding = error.value.findings[0]
    assert (finding.file, finding.key) == ("direct_mail.yml", "addresses")
    assert "more than one row for some profile_id" in finding.reason
    assert not (kit.directory / "landing" / "out.csv").exists()
    assert kit.sql("select count(*) from direct_mail.sends") == [(0,)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            "insert into campaign values ('P6', 'Fay', '6 Rue F', '75011', 'PARIS', 'FR', 45.0)",
            "is not unique",
        ),
        ("update campaign set profile_id = null where profile_id = 'P6'", "is empty on some rows"),
        ("update campaign set profile_id = '' where profile_id = 'P6'", "is empty on some rows"),
    ],
)
def test_an_identity_on_two_rows_or_on_none_stops_the_run(kit, change, expected):
    """A person listed twice would be mailed twice; an empty identity could not be recorded."""
    kit.sql(ADDRESSED)
    kit.sql(change)
    project = kit.project({"file_name": "out.csv", "address_columns": ADDRESS_COLUMNS}, extra=SOURCES)
    with pytest.raises(ConfigError) as error:
        kit.run(project)
    finding = error.value.findings[0]
    assert finding.key == "models.campaign.config.meta.direct_mail.identity"
    assert f"the identity column profile_id {expected}" in finding.reason
    if expected == "is not unique":
        assert "'P6' is on 2 rows" in finding.reason
    assert not (kit.directory / "landing" / "out.csv").exists()
    assert kit.sql("select count(*) from direct_mail.sends") == [(0,)]


@pytest.mark.parametrize(
    "identities",
    [
        ["P1", "", "P3"],  # one empty identity
        ["P1", "", ""],  # two: empty, not merely repeated
        ["P1", "P1", ""],  # empty and repeated: the empty one is named
    ],
)
def test_an_empty_string_identity_stops_the_run_like_a_null_one(kit, identities):
    rows = ", ".join(f"('{identity}', 'name {i}')" for i, identity in enumerate(identities))
    kit.sql(f"create table campaign as select * from (values {rows}) as t(profile_id, name)")
    project = kit.project({"file_name": "out.csv"})
    with pytest.raises(ConfigError) as error:
        kit.run(project)
    assert [str(f) for f in error.value.findings] == [
        "error: models/test.yml: models.campaign.config.meta.direct_mail.identity: the identity column "
        "profile_id is empty on some rows; it must name every row's profile"
    ]
    assert not (kit.directory / "landing").exists()
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]
    assert kit.sql("select count(*) from direct_mail.sends") == [(0,)]
