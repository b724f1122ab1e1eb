"""S3 (moto in server mode) and Azure Blob (Azurite) delivery, each a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading

import pytest
from boto3.s3.transfer import TransferConfig

from directmail.config import AzureRouting, S3Routing
from directmail.delivery import probe
from directmail.delivery.s3 import S3Destination
from directmail.errors import DeliveryError
from tests.servers import AZURITE_KEY, free_port

META = {"file_name": "catalog.csv", "sort_by": ["profile_id"]}
CONFIGURATION = {"split_threshold": 300, "compression": "gzip"}


def reference_files(kit, rows: int = 700) -> dict[str, bytes]:
    kit.rows(rows)
    kit.run(kit.project(META, CONFIGURATION), run_time="2026-01-01T00:00:00Z")
    return kit.landing()


def assert_same_drop(held: dict[str, bytes], expected: dict[str, bytes], prefix: str) -> None:
    held = {name.removeprefix(prefix): data for name, data in held.items()}
    assert set(held) == set(expected)
    for name, data in expected.items():
        if name.endswith(".manifest.json"):
            assert json.loads(held[name])["files"] == json.loads(data)["files"]
        else:
            assert held[name] == data, name


# -- S3 -------------------------------------------------------------------------------------------------


@pytest.fixture
def s3_credentials(monkeypatch):
    monkeypatch.setenv("DROP_KEY_ID", "AKIAEXAMPLEKEYID")
    monkeypatch.setenv("DROP_SECRET", "Example/Secret+Access+Key/0123456789")


def s3_routing(endpoint_url: str, **overrides) -> dict:
    return {
        "type": "s3",
        "bucket": "mail-drops",
        "region": "eu-west-1",
        "prefix": "acme/inbound/",
        "access_key_id": "${DROP_KEY_ID}",
        "secret_access_key": "${DROP_SECRET}",
        "endpoint_url": endpoint_url,
        "retries": 0,
        **overrides,
    }


def test_run_delivers_the_same_files_to_s3(kit, s3, s3_credentials):
    expected = reference_files(kit)
    s3.create_bucket("mail-drops")
    record = kit.run(kit.project(META, CONFIGURATION, routing=s3_routing(s3.endpoint_url)))
    held = s3.holds("mail-drops")
    assert_same_drop(held, expected, "acme/inbound/")
    assert len([n for n in held if n.endswith(".csv.gz")]) == 3
    assert record.destination == f"remote: s3://mail-drops/acme/inbound/ ({s3.endpoint_url})"
    head = s3.client().head_object(
        Bucket="mail-drops", Key="acme/inbound/catalog_001.csv.gz", ChecksumMode="ENABLED"
    )
    assert (
        base64.b64decode(head["ChecksumSHA256"])
        == hashlib.sha256(held["acme/inbound/catalog_001.csv.gz"]).digest()
    )


def test_large_file_goes_up_in_verified_parts(s3, s3_credentials, tmp_path):
    s3.create_bucket("mail-drops")
    destination = S3Destination("remote", S3Routing.model_validate(s3_routing(s3.endpoint_url)))
    destination.transfer = TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20)
    payload = os.urandom(12 * 2**20 + 123)
    source = tmp_path / "big.csv"
    source.write_bytes(payload)
    destination.put(source, "big.csv")
    destination.close()
    head = s3.client().head_object(Bucket="mail-drops", Key="acme/inbound/big.csv", ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-3"')  # three parts
    assert "ChecksumSHA256" in head
    assert s3.holds("mail-drops")["acme/inbound/big.csv"] == payload


def test_missing_bucket_is_a_clear_error(kit, s3, s3_credentials):
    kit.rows(5)
    with pytest.raises(DeliveryError) as caught:
        kit.run(kit.project(META, routing=s3_routing(s3.endpoint_url)))
    assert str(caught.value) == (
        "s3 routing 'remote' (bucket mail-drops): checking the bucket: the bucket does not exist (region eu-west-1)"
    )
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]


def test_unreachable_endpoint_fails_with_the_reason_and_no_secret(s3_credentials, tmp_path):
    routing = S3Routing.model_validate(s3_routing(f"http://127.0.0.1:{free_port()}", retries=2, timeout=2))
    with pytest.raises(DeliveryError) as caught:
        probe("remote", routing, tmp_path)
    message = str(caught.value)
    assert message.startswith(
        "s3 routing 'remote' (bucket mail-drops): checking the bucket: EndpointConnectionError"
    )
    assert message.endswith("(gave up after 3 attempts)")
    assert "Example/Secret+Access+Key" not in message and "AKIAEXAMPLEKEYID" not in message


def test_dropped_connections_are_retried(s3_credentials, tmp_path):
    """A server that accepts and hangs up at once: each attempt is one connection, counted."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def hang_up() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    port = listener.getsockname()[1]
    routing = S3Routing.model_validate(s3_routing(f"http://127.0.0.1:{port}", retries=2, timeout=2))
    try:
        with pytest.raises(DeliveryError, match=r"\(gave up after 3 attempts\)$"):
            probe("remote", routing, tmp_path)
    finally:
        listener.close()
    assert len(accepted) == 3


def test_check_connections_probe_leaves_nothing_in_the_bucket(s3, s3_credentials, tmp_path):
    s3.create_bucket("mail-drops")
    assert probe("remote", S3Routing.model_validate(s3_routing(s3.endpoint_url)), tmp_path).startswith(
        "s3://mail-drops/"
    )
    assert s3.holds("mail-drops") == {}


# -- Azure Blob -----------------------------------------------------------------------------------------


@pytest.fixture
def container(azurite, request):
    """A fresh container per test (Azurite is shared by the session)."""
    name = "drops-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    azurite.service().create_container(name)
    yield name
    azurite.service().delete_container(name)


def azure_routing(container: str, **overrides) -> dict:
    return {
        "type": "azure",
        "connection_string": "${AZURE_DROP}",
        "container": container,
        "prefix": "inbound",
        "retries": 0,
        **overrides,
    }


def test_run_delivers_the_same_files_to_azure_blob(kit, azurite, container, monkeypatch):
    monkeypatch.setenv("AZURE_DROP", azurite.connection_string())
    expected = reference_files(kit)
    record = kit.run(kit.project(META, CONFIGURATION, routing=azure_routing(container)))
    assert_same_drop(azurite.holds(container), expected, "inbound/")
    assert record.destination == f"remote: azure://devstoreaccount1/{container}/inbound/"


def test_missing_container_is_a_clear_error(azurite, monkeypatch, tmp_path):
    monkeypatch.setenv("AZURE_DROP", azurite.connection_string())
    with pytest.raises(DeliveryError) as caught:
        probe("remote", AzureRouting.model_validate(azure_routing("no-such-container")), tmp_path)
    assert str(caught.value) == (
        "azure routing 'remote' (container no-such-container): checking the container: "
        "the container does not exist in account devstoreaccount1"
    )


def test_wrong_account_key_is_refused_without_showing_the_key(azurite, container, monkeypatch, tmp_path):
    wrong_key = base64.b64encode(b"not the account key, but well formed").decode()
    monkeypatch.setenv("AZURE_DROP", azurite.connection_string(wrong_key))
    with pytest.raises(DeliveryError) as caught:
        probe("remote", AzureRouting.model_validate(azure_routing(container)), tmp_path)
    message = str(caught.value)
    assert "access refused" in message
    assert wrong_key not in message and AZURITE_KEY not in message


def test_probe_leaves_nothing_in_the_container(azurite, container, monkeypatch, tmp_path):
    monkeypatch.setenv("AZURE_DROP", azurite.connection_string())
    where = probe("remote", AzureRouting.model_validate(azure_routing(container)), tmp_path)
    assert where == f"azure://devstoreaccount1/{container}/inbound/"
    assert azurite.holds(container) == {}


# -- exactly once and replaced drops, on each object store ------------------------------------------------


def _settle_and_replace(kit, routing: dict, holds) -> None:
    """Killed after the manifest: the re-run settles from what the store holds and sends nothing; a later
    drop with fewer parts, replacing it on purpose (on_existing: replace), leaves no part of the earlier
    one, which is recorded superseded."""
    import signal

    from directmail.errors import Settled
    from tests.test_exactly_once import run_with_fault

    kit.rows(700)
    project = kit.project(META, CONFIGURATION, routing=routing)
    child = run_with_fault(kit, "after:catalog.manifest.json", META, CONFIGURATION, routing)
    assert child.returncode == -signal.SIGKILL, child.stderr
    held = holds()
    assert len([n for n in held if n.endswith(".csv.gz")]) == 3
    with pytest.raises(Settled):
        kit.run(project)
    assert holds() == held
    assert kit.sql("select status, attempt from direct_mail.runs") == [("delivered", 1)]
    assert kit.sql("select count(distinct profile_id) from direct_mail.sends") == [(700,)]

    kit.sql("delete from campaign where profile_id >= 'P000000250'")
    replacing = kit.project(META, {**CONFIGURATION, "on_existing": "replace"}, routing=routing)
    kit.run(replacing, run_time="2026-11-24T06:00:00Z")
    names = sorted(name.rsplit("/", 1)[-1] for name in holds())
    assert names == ["catalog.csv.gz", "catalog.csv.gz.sha256", "catalog.manifest.json"]
    assert kit.sql("select status from direct_mail.runs order by run_time") == [
        ("superseded",),
        ("delivered",),
    ]
    assert kit.sql("select count(distinct profile_id) from direct_mail.sends") == [(250,)]


def test_s3_settles_a_crashed_run_and_replaces_an_earlier_drop(kit, s3, s3_credentials):
    s3.create_bucket("mail-drops")
    _settle_and_replace(kit, s3_routing(s3.endpoint_url), lambda: s3.holds("mail-drops"))


def test_azure_settles_a_crashed_run_and_replaces_an_earlier_drop(kit, azurite, container, monkeypatch):
    monkeypatch.setenv("AZURE_DROP", azurite.connection_string())
    _settle_and_replace(kit, azure_routing(container), lambda: azurite.holds(container))
