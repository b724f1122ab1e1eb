"""Pulling return files from a routing's returns/ folder: local, SFTP (sshd), S3 (moto), Azure (Azurite)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from directmail.config import AzureRouting, S3Routing, SftpRouting
from directmail.delivery import open_destination
from directmail.returns import pull_returns
from tests.servers import SFTP_PASSWORD
from tests.test_delivery_cloud import azure_routing, s3_routing
from tests.test_delivery_sftp import sftp_routing

META = {"file_name": "catalog.csv", "sort_by": ["profile_id"]}
GOOD = b"identity,reason,returned_at\nP1,moved,2026-11-02\nP2,deceased,2026-11-03\n"
ALSO_GOOD = b"P3,refused,2026-11-04\r\nP1,moved,2026-11-02\r\n"  # P1's return is stored already
BAD = b"P4,moved,2026-11-05\nP5,lost,2026-11-05\n"
FILES = {
    "returns/2026-11-a.csv": GOOD,
    "returns/2026-11-b.TXT": ALSO_GOOD,
    "returns/bad.csv": BAD,
    "returns/scan.pdf": b"%PDF-1.7\n",
    "returns/.upload.csv.partial": b"P9,moved\n",  # hidden: an upload in progress
    "returns/archive/old.csv": b"P8,moved,2026-01-01\n",  # a subfolder is not read
    "outbound/catalog.csv": b"not a return file\n",
}

Put = Callable[[str, bytes], None]


def pull_and_check(kit, routing: dict | None, put: Put) -> None:
    """The same folder on every routing type gives the same report and rows; a second pull adds nothing."""
    project = kit.project(META, routing=routing)
    name = "remote" if routing is not None else "landing"
    target = project.dbt.target_info()

    destination = open_destination(name, project.config.routing[name], kit.directory)
    try:
        assert destination.list("returns") == []  # no folder yet
    finally:
        destination.close()
    for relative, data in FILES.items():
        put(relative, data)
    destination = open_destination(name, project.config.routing[name], kit.directory)
    try:
        assert destination.list("returns") == [
            "returns/2026-11-a.csv",
            "returns/2026-11-b.TXT",
            "returns/bad.csv",
            "returns/scan.pdf",
        ]
    finally:
        destination.close()

    report = pull_returns(project.config, name, target, kit.directory)
    assert [(i.name, i.rows, i.new) for i in report.ingested] == [
        ("2026-11-a.csv", 2, 2),
        ("2026-11-b.TXT", 2, 1),
    ]
    assert report.ignored == ["returns/scan.pdf"] and not report.ok
    assert report.refusal_lines() == [
        "bad.csv: refused, nothing stored: 1 bad row",
        "bad.csv: line 2: unknown reason 'lost' (expected one of undeliverable, moved, deceased, refused)",
    ]
    assert report.ingested[0].sha256 == hashlib.sha256(GOOD).hexdigest()
    assert kit.sql("select identity, reason from direct_mail.returns order by 1") == [
        ("P1", "moved"),
        ("P2", "deceased"),
        ("P3", "refused"),
    ]
    sources = kit.sql("select source from direct_mail.return_files order by source_file")
    assert sources[0][0] == f"routing {name} ({project.config.routing[name].type}): returns/2026-11-a.csv"
    markdown = report.to_markdown()
    assert "2 file(s) ingested (3 new returns), 0 already ingested, 1 refused, 1 ignored" in markdown
    assert "bad.csv: line 2: unknown reason 'lost'" in markdown

    again = pull_returns(project.config, name, target, kit.directory)
    assert again.ingested == [] and [i.earlier for i in again.skipped] == ["2026-11-a.csv", "2026-11-b.TXT"]
    assert len(again.refused) == 1  # still wrong: named again on every pull until replaced
    put("returns/bad.csv", BAD.replace(b"lost", b"refused"))  # the mail house corrects it
    fixed = pull_returns(project.config, name, target, kit.directory)
    assert fixed.ok and [(i.name, i.new) for i in fixed.ingested] == [("bad.csv", 2)]
    assert kit.sql("select count(*) from direct_mail.returns") == [(5,)]


def test_pull_from_a_local_folder(kit):
    root = kit.directory / "landing"

    def put(relative: str, data: bytes) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)

    pull_and_check(kit, None, put)


def test_pull_from_sftp(kit, sshd, monkeypatch, tmp_path):
    monkeypatch.setenv("SFTP_PASSWORD", SFTP_PASSWORD)
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    routing = sftp_routing(sshd, known_hosts)
    root = Path(routing["directory"])

    def put(relative: str, data: bytes) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)

    pull_and_check(kit, routing, put)
    SftpRouting.model_validate(routing)


def test_pull_from_s3(kit, s3, monkeypatch):
    monkeypatch.setenv("DROP_KEY_ID", "AKIAEXAMPLEKEYID")
    monkeypatch.setenv("DROP_SECRET", "Example/Secret+Access+Key/0123456789")
    s3.create_bucket("mail-drops")
    routing = s3_routing(s3.endpoint_url)
    S3Routing.model_validate(routing)
    client = s3.client()

    def put(relative: str, data: bytes) -> None:
        client.put_object(Bucket="mail-drops", Key=f"acme/inbound/{relative}", Body=data)

    pull_and_check(kit, routing, put)


@pytest.fixture
def container(azurite, request):
    name = "returns-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    azurite.service().create_container(name)
    yield name
    azurite.service().delete_container(name)


def test_pull_from_azure_blob(kit, azurite, container, monkeypatch):
    monkeypatch.setenv("AZURE_DROP", azurite.connection_string())
    routing = azure_routing(container)
    AzureRouting.model_validate(routing)
    client = azurite.service().get_container_client(container)

    def put(relative: str, data: bytes) -> None:
        client.upload_blob(f"inbound/{relative}", data, overwrite=True)

    pull_and_check(kit, routing, put)


def test_pull_refuses_an_unknown_or_draft_routing(kit):
    from directmail.errors import ConfigError

    project = kit.project(META)
    target = project.dbt.target_info()
    with pytest.raises(ConfigError) as caught:
        pull_returns(project.config, "nowhere", target, kit.directory)
    assert str(caught.value) == "error: direct_mail.yml: routing.nowhere: no such routing (defined: landing)"


def test_pull_reports_doubtful_identities_and_strict_refuses_their_file(kit):
    from tests.returns_kit import record_mailed

    project = kit.project(META)
    target = project.dbt.target_info()
    record_mailed(kit.database, ["P1", "P2"])
    folder = kit.directory / "landing" / "returns"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_bytes(b"P1,moved,2026-11-02\np2,moved,2026-11-02\n")
    (folder / "b.csv").write_bytes("P2,refused,2026-11-02\nP9\u200b,moved,2026-11-02\n".encode())

    strict = pull_returns(project.config, "landing", target, kit.directory, strict=True)
    assert strict.ingested == [] and not strict.ok
    assert strict.refusal_lines() == [
        "a.csv: refused, nothing stored: 1 bad row",
        "a.csv: line 2: identity 'p2' matches a mailed profile only ignoring letter case ('P2') (--strict)",
        "b.csv: refused, nothing stored: 1 bad row",
        "b.csv: line 2: identity 'P9\\u200b' holds an invisible format character (U+200B); matches no "
        "mailed profile (--strict)",
    ]
    assert kit.sql("select count(*) from direct_mail.returns") == [(0,)]
    assert kit.sql("select count(*) from direct_mail.return_files") == [(0,)]

    report = pull_returns(project.config, "landing", target, kit.directory)
    assert report.ok and report.lines()[1:] == [
        "ingested a.csv: 2 return(s), 2 new",
        "warning: a.csv: 1 return(s) whose identity matches a mailed profile only ignoring letter case: "
        "line 2 'p2' (mailed as 'P2')",
        "ingested b.csv: 2 return(s), 2 new",
        "warning: b.csv: 1 return(s) whose identity matches no mailed profile: line 2 'P9\\u200b'",
        "warning: b.csv: 1 return(s) whose identity holds an invisible format character: line 2 'P9\\u200b'",
    ]
    markdown = report.to_markdown()
    assert "## Doubtful identities" in markdown
    assert (
        "warning: b.csv: 1 return(s) whose identity matches no mailed profile: line 2 'P9\\u200b'" in markdown
    )
    assert kit.sql("select identity from direct_mail.returns order by source_file, source_line") == [
        ("P1",),
        ("p2",),
        ("P2",),
        ("P9\u200b",),
    ]
