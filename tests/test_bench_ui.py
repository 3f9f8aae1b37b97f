"""The UI benchmark runs end to end on a small scale, through its command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXE = Path(sys.executable).with_name("promptlake")


def test_bench_ui_small() -> None:
    # the real entry point: in-process runners swap sys.stderr under the server's threads
    result = subprocess.run(
        [str(EXE), "bench", "ui", "--generations", "300", "--turns", "5", "--requests", "5",
         "--json"], capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["generations"] == 300 and figures["sessions"] == 60
    assert set(figures["pages"]) == {
        "session", "generation", "search", "project", "project uncached", "sessions list"
    }  # fmt: skip
    assert figures["library_search"]["p50_ms"] > 0
    for page in figures["pages"].values():
        assert 0 < page["p50_ms"] <= page["p95_ms"] <= page["max_ms"]
        assert 0 < page["server_p50_ms"] <= page["server_p95_ms"] <= page["max_ms"]
    weight = figures["session_page_bytes"]
    assert weight["html"] > 5000 and weight["total_gzip"] < weight["total"]
