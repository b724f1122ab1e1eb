"""After `make ui`, the CLI finds the server's URL in the project and uses it while the server is up."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from directmail.cli import PREFECT_URL_FILE, use_local_prefect_server


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/api/health" else 404
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


def _serve(status: int) -> Iterator[str]:
    handler = type("Handler", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def healthy() -> Iterator[str]:
    yield from _serve(200)


@pytest.fixture
def unhealthy() -> Iterator[str]:
    yield from _serve(503)


@pytest.fixture
def no_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "set")  # recorded, so that teardown restores the original
    monkeypatch.delenv("PREFECT_API_URL")


def write_url(project: Path, url: str) -> None:
    (project / PREFECT_URL_FILE).parent.mkdir(parents=True, exist_ok=True)
    (project / PREFECT_URL_FILE).write_text(url + "\n")


def test_a_healthy_server_from_make_ui_is_used(tmp_path, healthy, no_api_url):
    write_url(tmp_path, healthy)
    assert use_local_prefect_server(tmp_path) == healthy
    assert os.environ["PREFECT_API_URL"] == healthy


def test_nothing_listening_is_ignored_quickly(tmp_path, no_api_url):
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_url(tmp_path, f"http://127.0.0.1:{port}/api")
    started = time.monotonic()
    assert use_local_prefect_server(tmp_path) is None
    assert time.monotonic() - started < 2
    assert "PREFECT_API_URL" not in os.environ


def test_an_unhealthy_server_or_no_file_is_ignored(tmp_path, unhealthy, no_api_url):
    assert use_local_prefect_server(tmp_path) is None  # no file
    write_url(tmp_path, unhealthy)
    assert use_local_prefect_server(tmp_path) is None
    assert "PREFECT_API_URL" not in os.environ


def test_an_exported_api_url_wins(tmp_path, healthy, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "https://prefect.example.com/api")
    write_url(tmp_path, healthy)
    assert use_local_prefect_server(tmp_path) is None
    assert os.environ["PREFECT_API_URL"] == "https://prefect.example.com/api"
