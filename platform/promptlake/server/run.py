"""Running the server inside a process (a thread) or as a child process, on a free
loopback port: what the tests and ``promptlake bench serve`` need, and embedders too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Lake
    from .app import ServerConfig


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_ready(base: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``/readyz`` until it answers 200 (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base} was not ready within {timeout:g} s")


class ThreadedServer:
    """``with ThreadedServer(lake) as server:`` uvicorn in a thread; ``server.url``. Leaving
    the block shuts it down gracefully (what was submitted is written first)."""

    def __init__(self, lake: Lake, config: ServerConfig | None = None, port: int = 0) -> None:
        import uvicorn

        from .app import create_app

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(lake, config)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def state(self) -> Any:
        return self.app.state.promptlake

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def start_process(
    database_url: str,
    port: int,
    home: Path,
    *,
    extra: list[str] | None = None,
    key: bytes | None = None,
) -> subprocess.Popen:
    """``promptlake serve`` as a child process on ``database_url`` (stderr to a log file in
    ``home``); returns once it is ready. ``key``: the store's master key, for a child
    whose ``home`` holds none (a store refuses a different key)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PROMPTLAKE_DATABASE_URL": database_url, "PROMPTLAKE_HOME": str(home)}
    if key is not None:
        import base64

        env["PROMPTLAKE_VAULT_KEY"] = base64.b64encode(key).decode()
    exe = Path(sys.executable).with_name("promptlake")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "promptlake.cli"]
    log = (home / f"serve-{port}.log").open("ab")
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--log-level", "warning", *(extra or [])],
        env=env,
        stdout=log,
        stderr=log,
    )
    log.close()
    try:
        wait_ready(f"http://127.0.0.1:{port}", process=process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process
