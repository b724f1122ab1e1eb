"""No person twice across days: duplicates and households are resolved before the frequency cap and the
holdout, so a capped (or held-out) person's duplicate or housemate never goes out in their place.

Each test runs the real pipeline on consecutive days against one DuckDB history and checks who was
sent (rows in `direct_mail.sends`) and why the others were not (`direct_mail.exclusions`).
"""

from __future__ import annotations

from tests.runner_kit import Kit

CAP = {"count": 1, "days": 6}
DAY_1, DAY_2 = "2026-11-23T06:00:00Z", "2026-11-26T06:00:00Z"


def sent(kit: Kit, day: str) -> list[str]:
    rows = kit.sql(
        f"select profile_id from direct_mail.sends where not is_holdout and run_id = 'campaign@{day}' "
        "order by 1"
    )
    return [profile for (profile,) in rows]


def excluded(kit: Kit, day: str) -> dict[str, tuple[str, str | None]]:
    rows = kit.sql(
        f"select profile_id, reason, detail from direct_mail.exclusions where run_id = 'campaign@{day}'"
    )
    return {profile: (reason, detail) for profile, reason, detail in rows}


def test_a_capped_persons_duplicate_is_not_mailed_instead(kit):
    kit.sql(
        "create table campaign as select * from (values ('P1', 'Ann Lee', '1 Rue A'), "
        "('P2', 'Ann Lee', '1 Rue A'), ('P3', 'Bob Roy', '2 Rue B')) as t(profile_id, name, street)"
    )
    project = kit.project({"file_name": "out.csv", "frequency_cap": CAP})
    kit.run(project, run_time=DAY_1)
    assert sent(kit, DAY_1) == ["P1", "P3"]
    assert excluded(kit, DAY_1) == {"P2": ("duplicate", "P1")}

    kit.take_drop()  # the mail house took the day-1 drop
    kit.run(project, run_time=DAY_2)
    assert sent(kit, DAY_2) == []
    assert excluded(kit, DAY_2) == {
        "P1": ("frequency_cap", "1 in the last 6 days"),
        "P2": ("duplicate", "P1"),  # the copy of a capped person stays out
        "P3": ("frequency_cap", "1 in the last 6 days"),
    }


def test_a_duplicate_that_was_mailed_caps_the_copy_that_sorts_first(kit):
    """Day 1 only P2 exists and is mailed; day 2 brings P1, an identical row that sorts first."""
    kit.sql("create table campaign as select 'P2' as profile_id, 'Ann Lee' as name, '1 Rue A' as street")
    project = kit.project({"file_name": "out.csv", "frequency_cap": CAP})
    kit.run(project, run_time=DAY_1)
    assert sent(kit, DAY_1) == ["P2"]

    kit.sql("insert into campaign values ('P1', 'Ann Lee', '1 Rue A')")
    kit.take_drop()  # the mail house took the day-1 drop
    kit.run(project, run_time=DAY_2)
    assert sent(kit, DAY_2) == []
    assert excluded(kit, DAY_2) == {
        "P1": ("frequency_cap", "duplicate P2: 1 in the last 6 days"),
        "P2": ("duplicate", "P1"),
    }


HOUSEHOLD = """
create table campaign as select * from (values
    ('P1', 'Ann', '1 Rue A', '75011', 'Paris', 'FR', 90.0),
    ('P2', 'Bob', '1 rue a', '75011', 'PARIS', 'FR', 10.0),
    ('P3', 'Cid', '2 Rue B', '75011', 'Paris', 'FR', 50.0)
) as t(profile_id, name, street, postal_code, city, country_code, lifetime_value)
"""
HOUSEHOLD_META = {
    "file_name": "out.csv",
    "frequency_cap": CAP,
    "household": True,
    "household_order": ["lifetime_value desc"],
    "address_columns": {
        "lines": ["street"],
        "postal_code": "postal_code",
        "city": "city",
        "country": "country_code",
    },
}


def test_a_capped_persons_housemate_is_not_mailed_instead(kit):
    kit.sql(HOUSEHOLD)
    project = kit.project(HOUSEHOLD_META)
    kit.run(project, run_time=DAY_1)
    assert sent(kit, DAY_1) == ["P1", "P3"]
    assert excluded(kit, DAY_1) == {"P2": ("household_duplicate", "P1")}

    kit.take_drop()  # the mail house took the day-1 drop
    kit.run(project, run_time=DAY_2)
    assert sent(kit, DAY_2) == []
    assert excluded(kit, DAY_2)["P1"] == ("frequency_cap", "1 in the last 6 days")
    assert excluded(kit, DAY_2)["P2"] == ("household_duplicate", "P1")


def test_a_household_mailed_through_one_member_is_capped_whoever_represents_it_next(kit):
    """Day 2, Bob's lifetime value overtakes Ann's: he now represents the household, but Ann was mailed
    3 days ago, so the household is capped."""
    kit.sql(HOUSEHOLD)
    project = kit.project(HOUSEHOLD_META)
    kit.run(project, run_time=DAY_1)
    kit.sql("update campaign set lifetime_value = 95.0 where profile_id = 'P2'")
    kit.take_drop()  # the mail house took the day-1 drop
    kit.run(project, run_time=DAY_2)
    assert sent(kit, DAY_2) == []
    assert excluded(kit, DAY_2)["P2"] == ("frequency_cap", "household member P1: 1 in the last 6 days")
    assert excluded(kit, DAY_2)["P1"] == ("household_duplicate", "P2")


def test_a_held_out_persons_duplicate_is_not_mailed_instead(kit):
    """With holdout, the first copy's bucket decides for the person: their duplicate is never sent."""
    kit.sql(
        "create table campaign as select 'P' || lpad(i::varchar, 4, '0') as profile_id, "
        "'Name ' || (i // 2) as name from range(400) t(i)"
    )
    project = kit.project({"file_name": "out.csv", "holdout_percent": 50})
    record = kit.run(project, run_time=DAY_1)
    assert record.excluded["duplicate"] == 200 and record.holdout > 0
    rows = kit.sql(
        "select e.profile_id from direct_mail.sends s join direct_mail.exclusions e "
        "on e.detail = s.profile_id and e.reason = 'duplicate' where s.is_holdout"
    )
    assert rows  # held-out people do have duplicates ...
    duplicates_of_held_out = {p for (p,) in rows}
    assert all(excluded(kit, DAY_1)[p][0] == "duplicate" for p in duplicates_of_held_out)
    mailed = set(sent(kit, DAY_1))
    assert not duplicates_of_held_out & mailed
    mailed_names = kit.sql(
        "select c.name, count(*) from campaign c join direct_mail.sends s using (profile_id) "
        "where not s.is_holdout group by 1 having count(*) > 1"
    )
    assert mailed_names == []  # ... and no name (person) is mailed twice or held out and mailed
    held_out_and_mailed = kit.sql(
        "select c.name from campaign c join direct_mail.sends s using (profile_id) group by 1 "
        "having bool_or(s.is_holdout) and bool_or(not s.is_holdout)"
    )
    assert held_out_and_mailed == []


def test_new_entrants_only_excludes_who_this_campaign_already_delivered_to(kit):
    """Day 1 mails P1 and P3 (P2 is P1's duplicate, P4 held out); day 2 adds P5. Only P5 is new: P1 and
    P3 are already_sent (with the run that sent them), P2 stays P1's duplicate, and the held-out P4 was
    never sent, so it counts as a new entrant."""
    kit.sql(
        "create table campaign as select * from (values ('P1', 'Ann Lee'), ('P2', 'Ann Lee'), "
        "('P3', 'Bob Roy'), ('P4', 'Cid Poe')) as t(profile_id, name)"
    )
    project = kit.project({"file_name": "out.csv", "audience": "new_entrants"})
    kit.run(project, run_time=DAY_1)
    kit.sql(
        "update direct_mail.send_rows set is_holdout = true, file_name = null where profile_id = 'P4'"
    )  # as if P4 had been in the holdout
    assert sent(kit, DAY_1) == ["P1", "P3"]

    kit.sql("insert into campaign values ('P5', 'Dee Fox')")
    kit.take_drop()  # the mail house took the day-1 drop
    record = kit.run(project, run_time=DAY_2)
    assert sent(kit, DAY_2) == ["P4", "P5"]
    assert excluded(kit, DAY_2) == {
        "P1": ("already_sent", f"campaign@{DAY_1}"),
        "P2": ("duplicate", "P1"),
        "P3": ("already_sent", f"campaign@{DAY_1}"),
    }
    assert record.excluded["already_sent"] == 2
    assert kit.landing()["out.csv"] == b"name\nCid Poe\nDee Fox\n"


def test_an_already_sent_persons_duplicate_or_housemate_is_not_mailed_instead(kit):
    kit.sql(HOUSEHOLD)
    project = kit.project({**HOUSEHOLD_META, "frequency_cap": None, "audience": "new_entrants"})
    kit.run(project, run_time=DAY_1)
    assert sent(kit, DAY_1) == ["P1", "P3"]
    # Bob overtakes Ann as the household's representative; a copy of Cid's row arrives as P0.
    kit.sql("update campaign set lifetime_value = 95.0 where profile_id = 'P2'")
    kit.sql(
        "insert into campaign select 'P0', name, street, postal_code, city, country_code, lifetime_value "
        "from campaign where profile_id = 'P3'"
    )
    kit.take_drop()  # the mail house took the day-1 drop
    kit.run(project, run_time=DAY_2)
    assert sent(kit, DAY_2) == []
    assert excluded(kit, DAY_2) == {
        "P0": ("already_sent", f"household member P3: campaign@{DAY_1}"),  # ties go to the lower id
        "P1": ("household_duplicate", "P2"),
        "P2": ("already_sent", f"household member P1: campaign@{DAY_1}"),
        "P3": ("household_duplicate", "P0"),
    }


def test_other_campaigns_sends_do_not_make_an_already_sent(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'Ann Lee' as name")
    kit.sql("create table other as select 'P1' as profile_id, 'Ann Lee' as name")
    kit.run(kit.project({"file_name": "other.csv"}, table="other"), campaign="other", run_time=DAY_1)
    kit.run(kit.project({"file_name": "out.csv", "audience": "new_entrants"}), run_time=DAY_2)
    assert sent(kit, DAY_2) == ["P1"]
