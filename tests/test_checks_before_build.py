"""`run` refuses what `validate` refuses before it builds anything, and a refused run records no attempt.

Through the CLI on the sample project: a header note the configuration's encoding cannot hold, and a
sort column the model does not have, each found before dbt builds, with file, key and reason.
"""

from __future__ import annotations

import pytest

from tests.test_sample_project import RUN_TIME, _edit, cli, query

MODELS = "models/campaigns/_campaigns__models.yml"
BUILD_TIMINGS = ".directmail/builds/winter_catalog.json"


@pytest.mark.slow
def test_a_note_the_encoding_cannot_hold_is_refused_by_validate_preview_and_run_before_the_build(
    sample_project,
):
    _edit(sample_project / MODELS, 'header_note: "Lapsed customers postcard"', 'header_note: "Lapsed 📮"')
    expected = (
        f"error: {MODELS}: models.lapsed_postcard.config.meta.direct_mail.header_note: header_note cannot "
        "be written in cp1252"
    )
    validated = cli(sample_project, "validate")
    assert validated.exit_code == 1 and expected in validated.output.splitlines(), validated.output
    for command in (["preview", "lapsed_postcard"], ["run", "lapsed_postcard", "--run-time", RUN_TIME]):
        refused = cli(sample_project, *command)
        assert refused.exit_code == 1
        assert expected in refused.output.splitlines(), refused.output
    assert not (sample_project / ".directmail" / "builds").exists()  # nothing was built
    assert not (sample_project / "landing").exists()


@pytest.mark.slow
def test_a_sort_column_the_model_lacks_stops_the_next_run_before_its_build_and_records_nothing(
    sample_project,
):
    first = cli(sample_project, "run", "winter_catalog", "--run-time", RUN_TIME)
    assert first.exit_code == 0, first.output
    built = (sample_project / BUILD_TIMINGS).stat().st_mtime_ns

    _edit(sample_project / MODELS, "sort_by: [country_code, postal_code, last_name]", "sort_by: [postcode]")
    expected = (
        f"error: {MODELS}: models.winter_catalog.config.meta.direct_mail.sort_by: sort column 'postcode' is "
        "not a column of the model"
    )
    later = "2026-11-30T05:00:00Z"
    for _ in range(2):  # again: still no attempt recorded
        refused = cli(sample_project, "run", "winter_catalog", "--run-time", later)
        assert refused.exit_code == 1
        assert expected in refused.output.splitlines(), refused.output
    assert (sample_project / BUILD_TIMINGS).stat().st_mtime_ns == built  # refused before dbt built
    assert query(sample_project, "select run_id, status, attempt from direct_mail.runs") == [
        (f"winter_catalog@{RUN_TIME}", "delivered", 1)
    ]


@pytest.mark.slow
def test_a_column_added_upstream_since_the_last_build_is_not_refused_before_the_build(sample_project):
    """The tables as last built lack the new column; the code changed, so the run builds and then checks."""
    first = cli(sample_project, "run", "winter_catalog", "--run-time", RUN_TIME)
    assert first.exit_code == 0, first.output
    model = sample_project / "models" / "campaigns" / "winter_catalog.sql"
    text = model.read_text()
    assert "\nselect * from audience" in text, text[-400:]
    model.write_text(text.replace("\nselect * from audience", "\nselect *, 1 as print_batch from audience"))
    _edit(
        sample_project / MODELS, "sort_by: [country_code, postal_code, last_name]", "sort_by: [print_batch]"
    )
    ran = cli(sample_project, "run", "winter_catalog", "--run-time", "2026-11-30T05:00:00Z")
    assert ran.exit_code == 0, ran.output
