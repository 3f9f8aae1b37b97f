"""notebooks/quickstart.ipynb runs top to bottom against a temporary database, and is
committed without outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' for nbclient")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_quickstart_runs_top_to_bottom(database_url, dbq, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on failure
    outputs = "\n".join(
        str(o.get("text") or o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )  # fmt: skip
    assert "exported 3 rows" in outputs
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.outputs)  # fmt: skip
    _, rows = dbq(
        "SELECT count(*), count(*) FILTER (WHERE g.origin = 'synthetic') FROM generations g"
        " JOIN projects p ON p.id = g.project_id WHERE p.name = 'quickstart'"
    )
    assert rows == [(7, 1)]
