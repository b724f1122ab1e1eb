"""OpenPGP encryption with the real gpg: decrypt what was delivered and compare with the plain extract."""

from __future__ import annotations

import gzip
import hashlib
import json
import time

import pytest

from directmail.errors import ConfigError
from tests.servers import MailHouseKey, run

META = {"file_name": "catalog.csv", "sort_by": ["profile_id"]}


def local_routing(key_path, directory: str = "encrypted") -> dict:
    return {"type": "local", "directory": directory, "encryption_key": str(key_path)}


def test_files_get_gpg_and_decrypt_to_the_plain_extract(kit, mailhouse_key, tmp_path, monkeypatch):
    home, gnupghome = tmp_path / "home", tmp_path / "user-gnupg"
    home.mkdir()
    gnupghome.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GNUPGHOME", str(gnupghome))
    kit.rows(500)
    configuration = {"split_threshold": 300, "compression": "gzip"}
    kit.run(kit.project(META, configuration), run_time="2026-01-01T00:00:00Z")
    plain = kit.landing()

    record = kit.run(kit.project(META, configuration, routing=local_routing(mailhouse_key.public_key)))

    root = kit.directory / "encrypted"
    delivered = {p.name: p.read_bytes() for p in root.iterdir()}
    assert sorted(delivered) == [
        "catalog.manifest.json",
        "catalog_001.csv.gz.gpg",
        "catalog_001.csv.gz.gpg.sha256",
        "catalog_002.csv.gz.gpg",
        "catalog_002.csv.gz.gpg.sha256",
    ]
    manifest = json.loads(delivered["catalog.manifest.json"])
    for entry, part in zip(manifest["files"], ("catalog_001.csv.gz", "catalog_002.csv.gz"), strict=True):
        encrypted = delivered[part + ".gpg"]
        assert encrypted[:1] != b"-"  # binary OpenPGP, not armored
        assert mailhouse_key.decrypt(encrypted) == plain[part]
        assert gzip.decompress(mailhouse_key.decrypt(encrypted)).startswith(b"name,street,country_code\n")
        digest = hashlib.sha256(encrypted).hexdigest()
        assert entry == {
            "name": part + ".gpg",
            "rows": entry["rows"],
            "bytes": len(encrypted),
            "sha256": digest,
        }
        assert delivered[part + ".gpg.sha256"] == f"{digest}  {part}.gpg\n".encode()
    assert [f["rows"] for f in manifest["files"]] == [300, 200]
    assert record.files == manifest["files"]
    assert list(home.iterdir()) == [] and list(gnupghome.iterdir()) == []  # the user's keyring untouched


def test_a_file_that_is_not_a_public_key_is_refused_before_any_work(kit, tmp_path):
    bogus = tmp_path / "mailhouse.asc"
    bogus.write_text(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    kit.rows(3)
    with pytest.raises(ConfigError) as caught:
        kit.run(kit.project(META, routing=local_routing(bogus)))
    assert str(caught.value) == (
        f"error: direct_mail.yml: routing.remote.encryption_key: {bogus} is not an OpenPGP public key"
    )
    assert not (kit.directory / "encrypted").exists()


def test_a_missing_key_file_is_named(kit, tmp_path):
    kit.rows(3)
    with pytest.raises(ConfigError, match=r"routing.remote.encryption_key: .*nowhere.asc does not exist"):
        kit.run(kit.project(META, routing=local_routing(tmp_path / "nowhere.asc")))


def test_an_expired_encryption_subkey_is_refused(kit, tmp_path):
    short_lived = MailHouseKey(tmp_path, user_id="Old House <old@example.com>", expire="seconds=1")
    try:
        time.sleep(2)
        kit.rows(3)
        with pytest.raises(ConfigError, match="has no usable encryption subkey"):
            kit.run(kit.project(META, routing=local_routing(short_lived.public_key)))
    finally:
        short_lived.close()


def test_a_secret_key_is_refused(kit, mailhouse_key, tmp_path):
    secret = tmp_path / "secret.asc"
    exported = run(
        "gpg", "--homedir", str(mailhouse_key.home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
        "--armor", "--export-secret-keys", mailhouse_key.fingerprint,
    )  # fmt: skip
    secret.write_text(exported.stdout)
    kit.rows(3)
    with pytest.raises(ConfigError, match="holds a secret key; give the public key only"):
        kit.run(kit.project(META, routing=local_routing(secret)))
