"""Master key hygiene: a store written with one key refuses to start with another, or
with none, and says how to recover; a deliberate reset is an explicit command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import promptlake
from promptlake import ConfigurationError

EXE = Path(sys.executable).with_name("promptlake")


def test_missing_or_replaced_key_is_a_clear_error(database_url, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    key_file = tmp_path / "home" / "vault.key"
    with promptlake.connect() as lake:
        proj = lake.project("keys")
        proj.set_pii_policy({"EMAIL": "pseudonymize"}, vault=True)
        first = proj.log(prompt="mail ann@example.com", output="ok")
    original = key_file.read_bytes()
    assert key_file.stat().st_mode & 0o777 == 0o600

    key_file.unlink()
    with pytest.raises(ConfigurationError, match="Restore the key file") as missing:
        promptlake.connect()
    assert str(key_file) in str(missing.value)
    assert not key_file.exists()  # no silent new key

    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    with pytest.raises(ConfigurationError, match="this store was written with key"):
        promptlake.connect()

    key_file.write_bytes(original)
    with promptlake.connect() as lake:
        proj = lake.project("keys")
        again = proj.log(prompt="mail ann@example.com", output="ok")
        assert proj.generation(again.id).input_text == proj.generation(first.id).input_text
        assert proj.reveal(first.id)["input_text"] == "mail ann@example.com"


def test_forget_key_is_deliberate(database_url, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    key_file = tmp_path / "home" / "vault.key"
    with promptlake.connect() as lake:
        lake.project("keys").set_pii_policy({"EMAIL": "pseudonymize"})
        lake.project("keys").log(prompt="mail ann@example.com", output="ok")
    key_file.unlink()
    env = {**os.environ}
    refused = subprocess.run(
        [str(EXE), "db", "forget-key"], capture_output=True, text=True, env=env
    )
    assert refused.returncode != 0 and "--yes" in refused.stderr
    done = subprocess.run(
        [str(EXE), "db", "forget-key", "--yes"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    with promptlake.connect() as lake:  # a new key is accepted and recorded
        lake.project("keys").log(prompt="mail bob@example.com", output="ok")
    assert key_file.exists()
    key_file.write_bytes(os.urandom(32))
    with pytest.raises(ConfigurationError):
        promptlake.connect()


def test_key_file_made_by_many_threads_at_once_is_one_whole_key(tmp_path) -> None:
    import threading

    from promptlake.privacy.keys import _key_file

    got: list = []

    def make() -> None:
        try:
            got.append(_key_file(tmp_path / "vault.key"))
        except Exception as exc:  # a half-written key read by a racing thread, before
            got.append(exc)

    threads = [threading.Thread(target=make) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 32 and len(set(got)) == 1 and len(got[0]) == 32
    assert [p.name for p in tmp_path.iterdir()] == ["vault.key"]
