"""`directmail validate --check-connections` and `directmail run` on the sample project, to real servers."""

from __future__ import annotations

import hashlib
import json

import yaml

from tests.servers import SFTP_PASSWORD
from tests.test_sample_project import cli, query


def test_sample_campaigns_delivered_to_sftp_encrypted_s3_and_azure(
    sample_project, sshd, s3, azurite, mailhouse_key, monkeypatch
):
    monkeypatch.setenv("MAILHOUSE_SFTP_PASSWORD", SFTP_PASSWORD)
    monkeypatch.setenv("DROP_KEY_ID", "AKIAEXAMPLEKEYID")
    monkeypatch.setenv("DROP_SECRET", "Example/Secret+Access+Key/0123456789")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
    azurite.service().create_container("mail-drops")

    # the plain reference: a dry run of the same slot (nothing recorded, so no frequency cap applies next)
    dry = cli(sample_project, "run", "winter_catalog", "--run-time", "2026-11-23T06:00:00Z", "--dry-run")
    assert dry.exit_code == 0, dry.output
    dry_dir = sample_project / ".directmail" / "dry-run" / "winter_catalog_2026-11-23T060000Z"
    plain = {str(p.relative_to(dry_dir)): p.read_bytes() for p in dry_dir.rglob("*") if p.is_file()}

    config_file = sample_project / "direct_mail.yml"
    config = yaml.safe_load(config_file.read_text())
    config["routing"].update(
        {
            "mailhouse_sftp": {
                "type": "sftp",
                "host": "127.0.0.1",
                "port": sshd.port,
                "username": sshd.user,
                "password": "${MAILHOUSE_SFTP_PASSWORD}",
                "known_hosts": "keys/known_hosts",
                "directory": str(sshd.root / "inbound"),
                "encryption_key": "keys/mailhouse.asc",
            },
            "s3_drop": {
                "type": "s3",
                "bucket": "acme-mail",
                "region": "eu-west-1",
                "prefix": "in/",
                "access_key_id": "${DROP_KEY_ID}",
                "secret_access_key": "${DROP_SECRET}",
                "endpoint_url": s3.endpoint_url,
                "retries": 0,
            },
            "azure_drop": {
                "type": "azure",
                "connection_string": "${AZURE_STORAGE_CONNECTION_STRING}",
                "container": "mail-drops",
                "prefix": "postcards-in",
            },
        }
    )
    config["configurations"]["mailhouse_csv"]["routing"] = "mailhouse_sftp"
    config["configurations"]["mailhouse_semicolon_cp1252"]["routing"] = "s3_drop"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    (sample_project / "keys").mkdir()
    sshd.write_known_hosts(sample_project / "keys" / "known_hosts")
    (sample_project / "keys" / "mailhouse.asc").write_bytes(mailhouse_key.public_key.read_bytes())

    failing = cli(sample_project, "validate", "--check-connections")
    assert failing.exit_code == 1
    assert (
        "failed: routing s3_drop (s3): s3 routing 's3_drop' (bucket acme-mail): checking the bucket: "
        "the bucket does not exist (region eu-west-1)"
    ) in failing.output
    s3.create_bucket("acme-mail")
    checked = cli(sample_project, "validate", "--check-connections")
    assert checked.exit_code == 0, checked.output
    assert checked.output.count("\nok: routing ") + checked.output.startswith("ok: routing ") == 4, (
        checked.output
    )
    assert (
        f"ok: routing mailhouse_sftp (sftp): can write to sftp://dmsftp@127.0.0.1:{sshd.port}"
        in checked.output
    )
    assert SFTP_PASSWORD not in checked.output

    # winter_catalog → SFTP, encrypted; decrypting what the server holds gives the plain files back
    result = cli(sample_project, "run", "winter_catalog", "--run-time", "2026-11-23T06:00:00Z")
    assert result.exit_code == 0, result.output
    held = {name.removeprefix("inbound/"): data for name, data in sshd.holds().items()}
    parts = sorted(n for n in plain if n.endswith(".csv"))
    assert len(parts) == 2
    for part in parts:
        assert mailhouse_key.decrypt(held[part + ".gpg"]) == plain[part]
        digest = hashlib.sha256(held[part + ".gpg"]).hexdigest()
        assert held[part + ".gpg.sha256"].decode() == f"{digest}  {part.split('/')[-1]}.gpg\n"
    manifest = json.loads(held["outbound/winter_catalog_20261123.manifest.json"])
    assert [f["name"] for f in manifest["files"]] == [p.split("/")[-1] + ".gpg" for p in parts]

    # lapsed_postcard → S3, then the same configuration pointed at Azure Blob for the next run
    assert cli(sample_project, "run", "lapsed_postcard", "--run-time", "2026-11-23T06:00:00Z").exit_code == 0
    in_s3 = s3.holds("acme-mail")
    stem = "in/postcards/lapsed_postcard_20261123_060000"
    assert f"{stem}.manifest.json" in in_s3 and in_s3[f"{stem}.txt"].startswith(
        b"Lapsed customers postcard\r\n"
    )
    assert in_s3[f"{stem}.txt.sha256"].split()[0].decode() == hashlib.sha256(in_s3[f"{stem}.txt"]).hexdigest()

    config["configurations"]["mailhouse_semicolon_cp1252"]["routing"] = "azure_drop"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    campaigns = sample_project / "models" / "campaigns" / "_campaigns__models.yml"  # everyone, not only
    campaigns.write_text(campaigns.read_text().replace("audience: new_entrants", "audience: all"))  # new ones
    assert cli(sample_project, "run", "lapsed_postcard", "--run-time", "2026-11-24T06:00:00Z").exit_code == 0
    in_azure = azurite.holds("mail-drops")
    stem = "postcards-in/postcards/lapsed_postcard_20261124_060000"
    assert sorted(in_azure) == [f"{stem}.manifest.json", f"{stem}.txt", f"{stem}.txt.sha256"]

    runs = query(sample_project, "select run_id, status, destination from direct_mail.runs order by run_id")
    assert runs == [
        (
            "lapsed_postcard@2026-11-23T06:00:00Z",
            "delivered",
            "s3_drop: s3://acme-mail/in/ (" + s3.endpoint_url + ")",
        ),
        (
            "lapsed_postcard@2026-11-24T06:00:00Z",
            "delivered",
            "azure_drop: azure://devstoreaccount1/mail-drops/postcards-in/",
        ),
        (
            "winter_catalog@2026-11-23T06:00:00Z",
            "delivered",
            f"mailhouse_sftp: sftp://dmsftp@127.0.0.1:{sshd.port}{sshd.root}/inbound",
        ),
    ]
