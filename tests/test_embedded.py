"""The embedded server: started under PROMPTLAKE_HOME on first use, reused, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import promptlake
from promptlake.db import embedded


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "plhome"
    monkeypatch.setenv("PROMPTLAKE_HOME", str(home))
    yield home
    embedded.stop(home / "pgdata")


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("promptlake")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=os.environ.copy())


def test_connect_without_url_starts_migrates_and_reuses(home: Path) -> None:
    with promptlake.connect() as lake:
        lake.project("p").log(prompt="kept across processes", output="yes")
        assert ("host=" in lake.url and str(home) in lake.url) or "/tmp" in lake.url
    state = embedded.status(home / "pgdata")
    assert state.running and state.pid
    # another process reuses the running server and sees the data
    out = _cli("sql", "SELECT input_text FROM generations", "--format", "csv", "--project", "p")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["input_text", "kept across processes"]

    status = _cli("db", "status")
    assert "running: yes" in status.stdout
    stop = _cli("db", "stop")
    assert "stopped" in stop.stdout
    assert not embedded.status(home / "pgdata").running
    assert "running: no" in _cli("db", "status").stdout

    # started again on next use, data intact
    with promptlake.connect() as lake:
        _, rows = lake.project("p").query("SELECT count(*) FROM generations")
        assert rows == [(1,)]


def test_db_stop_refuses_with_a_configured_url(monkeypatch, database_url: str) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    out = _cli("db", "stop")
    assert out.returncode == 2 and "PROMPTLAKE_DATABASE_URL is set" in out.stderr
