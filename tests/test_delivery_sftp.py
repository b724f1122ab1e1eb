"""SFTP delivery against a real OpenSSH sshd on 127.0.0.1: auth, host-key pinning, atomicity, faults."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from directmail.config import SftpRouting
from directmail.delivery import probe
from directmail.errors import ConfigError, DeliveryError
from tests.servers import SFTP_PASSWORD, SshServer, free_port

META = {"file_name": "drops/catalog.csv", "sort_by": ["profile_id"]}


def sftp_routing(server: SshServer, known_hosts: Path, **overrides) -> dict:
    return {
        "type": "sftp",
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.user,
        "password": "${SFTP_PASSWORD}",
        "known_hosts": str(known_hosts),
        "directory": str(server.root / "inbound"),
        "retries": 0,
        **overrides,
    }


@pytest.fixture
def known_hosts(sshd, tmp_path) -> Path:
    return sshd.write_known_hosts(tmp_path / "known_hosts")


@pytest.fixture(autouse=True)
def _password(monkeypatch):
    monkeypatch.setenv("SFTP_PASSWORD", SFTP_PASSWORD)


def reference_files(kit, rows: int, configuration: dict | None = None, padding: int = 0) -> dict[str, bytes]:
    """The same campaign delivered to a local folder: what the server must end up holding."""
    kit.rows(rows, padding=padding)
    kit.run(kit.project(META, configuration), run_time="2026-01-01T00:00:00Z")
    return kit.landing()


def test_run_delivers_the_same_files_to_sftp_manifest_last(kit, sshd, known_hosts):
    expected = reference_files(kit, 450, {"split_threshold": 200})
    record = kit.run(kit.project(META, {"split_threshold": 200}, routing=sftp_routing(sshd, known_hosts)))

    held = {name.removeprefix("inbound/"): data for name, data in sshd.holds().items()}
    data_files = [n for n in expected if not n.endswith("manifest.json")]
    assert len(data_files) == 6  # 3 parts + 3 sidecars
    assert {n: held[n] for n in data_files} == {n: expected[n] for n in data_files}
    manifest = json.loads(held["drops/catalog.manifest.json"])
    assert manifest["files"] == json.loads(expected["drops/catalog.manifest.json"])["files"]
    assert not [n for n in held if n.endswith(".partial")]
    manifest_time = (sshd.root / "inbound/drops/catalog.manifest.json").stat().st_mtime_ns
    assert all((sshd.root / "inbound" / n).stat().st_mtime_ns <= manifest_time for n in data_files)
    assert record.status == "delivered"
    assert record.destination == f"remote: sftp://{sshd.user}@127.0.0.1:{sshd.port}{sshd.root}/inbound"


@pytest.mark.parametrize("key_name", ["ed25519", "ed25519-passphrase", "rsa"])
def test_key_login_with_and_without_passphrase(sshd, known_hosts, tmp_path, monkeypatch, key_name):
    monkeypatch.setenv("SFTP_KEY", str(sshd.client_keys[key_name]))
    monkeypatch.setenv("SFTP_KEY_PASSPHRASE", "key-Pa55phrase")
    routing = sftp_routing(sshd, known_hosts, password=None, private_key="${SFTP_KEY}")
    if key_name.endswith("passphrase"):
        routing["private_key_passphrase"] = "${SFTP_KEY_PASSPHRASE}"
    where = probe("remote", SftpRouting.model_validate(routing), tmp_path)
    assert where.startswith("sftp://dmsftp@127.0.0.1")
    assert list((sshd.root / "inbound").iterdir()) == []  # the probe file was removed


def test_key_given_as_text_in_the_variable(sshd, known_hosts, tmp_path, monkeypatch):
    monkeypatch.setenv("SFTP_KEY", sshd.client_keys["ed25519"].read_text())
    routing = sftp_routing(sshd, known_hosts, password=None, private_key="${SFTP_KEY}")
    probe("remote", SftpRouting.model_validate(routing), tmp_path)


def test_encrypted_key_without_or_with_wrong_passphrase(sshd, known_hosts, tmp_path, monkeypatch):
    monkeypatch.setenv("SFTP_KEY", str(sshd.client_keys["ed25519-passphrase"]))
    monkeypatch.setenv("SFTP_KEY_PASSPHRASE", "not-the-Pa55phrase")
    routing = sftp_routing(sshd, known_hosts, password=None, private_key="${SFTP_KEY}")
    with pytest.raises(DeliveryError, match="private_key: the key is encrypted: set private_key_passphrase"):
        probe("remote", SftpRouting.model_validate(routing), tmp_path)
    routing["private_key_passphrase"] = "${SFTP_KEY_PASSPHRASE}"
    with pytest.raises(DeliveryError, match="private_key: wrong passphrase") as caught:
        probe("remote", SftpRouting.model_validate(routing), tmp_path)
    assert "not-the-Pa55phrase" not in str(caught.value)


def test_wrong_password_is_a_clear_error_without_the_password(sshd, known_hosts, tmp_path, monkeypatch):
    monkeypatch.setenv("SFTP_PASSWORD", "Wrong-Pa55word-123")
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        probe("remote", SftpRouting.model_validate(sftp_routing(sshd, known_hosts, retries=3)), tmp_path)
    message = str(caught.value)
    assert message == (
        f"sftp routing 'remote' (127.0.0.1:{sshd.port}): authentication failed for user 'dmsftp' (tried password)"
    )
    assert "Wrong-Pa55word-123" not in message
    assert caught.value.transient is False  # the Prefect flow will not retry it either
    assert time.monotonic() - started < 5  # not retried: a refused password is not transient


def test_key_the_server_does_not_know_is_refused(sshd, known_hosts, tmp_path, monkeypatch):
    from tests.servers import run

    stranger = tmp_path / "id_stranger"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger))
    monkeypatch.setenv("SFTP_KEY", str(stranger))
    routing = sftp_routing(sshd, known_hosts, password=None, private_key="${SFTP_KEY}")
    with pytest.raises(
        DeliveryError, match=r"authentication failed for user 'dmsftp' \(tried key ssh-ed25519\)"
    ):
        probe("remote", SftpRouting.model_validate(routing), tmp_path)


def test_changed_host_key_is_refused_and_nothing_is_written(sshd, tmp_path):
    from tests.servers import run

    impostor = tmp_path / "impostor_key"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor))
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts", impostor)
    with pytest.raises(DeliveryError, match=r"host key \(SHA256:.*\) does not match .*known_hosts; refused"):
        probe("remote", SftpRouting.model_validate(sftp_routing(sshd, known_hosts)), tmp_path)
    assert sshd.holds() == {}
    assert known_hosts.read_text() == sshd.known_hosts_line(impostor)  # never rewritten


def test_unknown_host_is_refused_before_any_work(kit, sshd, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line().replace(f"]:{sshd.port}", f"]:{sshd.port + 1}"))
    kit.rows(3)
    with pytest.raises(ConfigError) as caught:
        kit.run(kit.project(META, routing=sftp_routing(sshd, known_hosts)))
    assert str(caught.value) == (
        f"error: direct_mail.yml: routing.remote.known_hosts: no host key for [127.0.0.1]:{sshd.port} in "
        f"{known_hosts}: unknown hosts are refused (add the mail house's key, e.g. from ssh-keyscan, after "
        "checking its fingerprint)"
    )
    assert kit.sql("select count(*) from information_schema.tables where table_schema = 'direct_mail'") == [
        (0,)
    ]
    assert sshd.holds() == {}


def _when_upload_starts(server: SshServer, action) -> threading.Thread:
    """Watch the server's disk; as soon as a temporary file is growing, do `action` (crash the server)."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for partial in server.root.rglob(".*.partial"):
                with contextlib.suppress(FileNotFoundError):
                    if partial.stat().st_size > 0:
                        action()
                        return
            time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_server_killed_mid_upload_leaves_no_final_file_and_the_rerun_completes(kit, sshd, known_hosts):
    expected = reference_files(kit, 400_000, padding=60)
    assert len(expected["drops/catalog_001.csv"]) > 15_000_000
    project = kit.project(META, routing=sftp_routing(sshd, known_hosts))

    watcher = _when_upload_starts(sshd, sshd.stop)
    with pytest.raises(DeliveryError, match=r"upload of drops/catalog_001\.csv"):
        kit.run(project, run_time="2026-11-23T06:00:00Z")
    watcher.join()
    sshd.start()  # the mail house's server comes back
    held = sshd.holds()
    assert not [n for n in held if not n.endswith(".partial")], "nothing under a final name"
    assert kit.sql("select status from direct_mail.runs where run_id = 'campaign@2026-11-23T06:00:00Z'") == [
        ("failed",)
    ]

    record = kit.run(project, run_time="2026-11-23T06:00:00Z")
    held = {name.removeprefix("inbound/"): data for name, data in sshd.holds().items()}
    assert record.status == "delivered" and record.attempt == 2
    for name in ("drops/catalog_001.csv", "drops/catalog_002.csv"):
        assert held[name] == expected[name]
        assert held[name + ".sha256"].split()[0].decode() == hashlib.sha256(held[name]).hexdigest()
    assert not [n for n in held if n.endswith(".partial")]


def test_dropped_connection_is_retried_within_the_run(kit, sshd, known_hosts):
    expected = reference_files(kit, 200_000, padding=60)
    project = kit.project(META, routing=sftp_routing(sshd, known_hosts, retries=2))
    watcher = _when_upload_starts(sshd, sshd.kill_sessions)
    record = kit.run(project)
    watcher.join()
    held = {name.removeprefix("inbound/"): data for name, data in sshd.holds().items()}
    assert record.status == "delivered"
    assert held["drops/catalog.csv"] == expected["drops/catalog.csv"]
    assert (sshd.directory / "sshd.log").read_text().count("Accepted password") >= 2


def test_unreachable_server_is_retried_then_fails_with_the_reason(sshd, known_hosts, tmp_path):
    port = free_port()  # nothing listens there
    known_hosts.write_text(sshd.known_hosts_line().replace(f"]:{sshd.port}", f"]:{port}"))
    routing = SftpRouting.model_validate(sftp_routing(sshd, known_hosts, port=port, retries=2))
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        probe("remote", routing, tmp_path)
    assert time.monotonic() - started >= 3  # backoff 1 s, then 2 s
    assert str(caught.value).startswith(
        f"sftp routing 'remote' (127.0.0.1:{port}): upload of .directmail-probe-"
    )
    assert "Connection refused (gave up after 3 attempts)" in str(caught.value)
    assert caught.value.transient is True  # worth another try later (the Prefect flow retries delivery)
