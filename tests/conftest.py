from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.runner_kit import Kit

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = [
    "dbt_project.yml",
    "profiles.yml",
    "direct_mail.yml",
    "models",
    "macros",
    "seeds",
    "data-tests",
]

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)


def copy_project_files(destination: Path) -> Path:
    """A private copy of the sample dbt project's files, with no warehouse yet."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name)
        else:
            shutil.copy2(source, destination / name)
    return destination


def copy_sample_project(destination: Path, profiles: int = 2000) -> Path:
    """A private copy of the sample dbt project with its own generated warehouse."""
    from sampledata.generate import generate

    copy_project_files(destination)
    generate(destination / "warehouse" / "directmail.duckdb", profiles)
    return destination


@pytest.fixture
def sample_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
    return copy_sample_project(tmp_path / "project")


# -- real servers on 127.0.0.1 (tests/servers.py) ------------------------------------------------------


@pytest.fixture
def sshd():
    from tests.servers import SshServer

    server = SshServer()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def s3_server():
    from tests.servers import S3Server

    server = S3Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server):
    s3_server.reset()
    yield s3_server
    s3_server.reset()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    from tests.servers import AzuriteServer

    server = AzuriteServer(tmp_path_factory.mktemp("azurite"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mailhouse_key(tmp_path_factory):
    from tests.servers import MailHouseKey

    key = MailHouseKey(tmp_path_factory.mktemp("mailhouse-key"))
    try:
        yield key
    finally:
        key.close()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL 15 server for the `postgres` target; skipped only where its binaries are missing."""
    from tests.servers import POSTGRES_BIN, PostgresServer

    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 server missing ({POSTGRES_BIN}/initdb): make test-servers installs it")
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


# -- Prefect: a temporary API for flow tests ------------------------------------------------------------


@pytest.fixture(scope="module")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def latest_artifact(key: str) -> str:
    """The newest artifact under `key` (a flow run's report), as Markdown."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC
        )
    assert found, f"no artifact {key}"
    return found[0].data
