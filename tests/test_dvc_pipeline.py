"""The top-level dvc.yaml and params.yaml, run by real DVC in a temporary git repository
against the test database: ``dvc repro`` cuts and records a dataset, ``dvc status`` is
clean afterwards, the md5s in ``dvc.lock`` are those of the files, and a parameter
change reruns only the stages that depend on it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("dvc", reason="DVC is not installed: pip install -e '.[datasets]'")

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


@pytest.fixture
def pipeline_repo(tmp_path: Path, database_url: str) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["export"]["project"] = "test-project"
    params["dataset"]["mlflow"] = False  # MLflow inputs are tested in test_datasets.py
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PROMPTLAKE_DATABASE_URL": database_url,
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }  # fmt: skip
    _run(["git", "init", "-q"], repo, env)
    _run([str(BIN / "dvc"), "init", "-q"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-q", "-m", "pipeline"], repo, env)
    return repo, env


def test_dvc_repro_cuts_records_and_reruns_only_what_changed(pipeline_repo, project) -> None:
    repo, env = pipeline_repo
    for i in range(40):
        g = project.log(
            prompt=f"how do I configure feature {i} of the product?",
            output=f"To configure feature {i}, open settings and set option {i * 7}.",
            model="gpt-4o" if i % 2 else "llama-3",
            origin="synthetic" if i % 4 == 0 else "real",
            generator="llama-3-70b" if i % 4 == 0 else None,
        )
        project.score(g, "helpfulness", (i % 5) / 4)
    project.log(prompt="how do I configure feature 1 of the product?",
                output="To configure feature 1, open settings and set option 7.",
                model="gpt-4o")  # an exact duplicate  # fmt: skip
    dvc = str(BIN / "dvc")

    first = _run([dvc, "repro"], repo, env)
    assert _ran(first) == ["export", "dedup", "anonymize", "split", "stats", "record"]
    assert "Data and pipelines are up to date" in _run([dvc, "status"], repo, env)

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    export_out = lock["stages"]["export"]["outs"][0]
    exported = repo / export_out["path"]
    assert hashlib.md5(exported.read_bytes()).hexdigest() == export_out["md5"]
    split_md5 = lock["stages"]["split"]["outs"][0]["md5"]
    metrics = yaml.safe_load((repo / "data" / "metrics.json").read_text())
    assert metrics["dedup"]["exact_removed"] == 1 and metrics["rows"] <= 40
    assert metrics["splits"]["test"]["synthetic_share"] == 0

    (version,) = project.datasets.list()
    assert version.md5 == split_md5 and version.name == "demo-sft"
    head = _run(["git", "rev-parse", "HEAD"], repo, env).strip()
    assert version.git_rev == head and version.row_count == metrics["rows"]

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["split"].update(train=0.6, validation=0.2, test=0.2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    exported_at = exported.stat().st_mtime_ns
    second = _run([dvc, "repro"], repo, env)
    assert _ran(second) == ["split", "stats", "record"]
    assert exported.stat().st_mtime_ns == exported_at
    assert "Data and pipelines are up to date" in _run([dvc, "status"], repo, env)

    newer, older = project.datasets.list()
    assert older.id == version.id and newer.md5 != version.md5
    change = project.datasets.diff(older, newer)
    assert change.added == {} and change.removed == {}  # same rows, some in other splits
    assert change.moved + change.unchanged == version.row_count

    forced = _run([dvc, "repro", "--force", "export"], repo, env)
    assert _ran(forced) == ["export"]
    assert _ran(_run([dvc, "repro"], repo, env)) == []  # same data, same bytes: nothing reruns
    assert len(project.datasets.list()) == 2
