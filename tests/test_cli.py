"""The command line, through its real entry point (the installed ``promptlake`` script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("promptlake")


@pytest.fixture
def run(database_url: str, tmp_path: Path):
    env = {
        **os.environ,
        "PROMPTLAKE_DATABASE_URL": database_url,
        "PROMPTLAKE_HOME": str(tmp_path / "home"),
    }

    def _run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env)

    return _run


def test_every_command_explains_itself() -> None:
    for args in (
        ["--help"],
        ["db", "--help"],
        ["db", "url", "--help"],
        ["db", "status", "--help"],
        ["db", "stop", "--help"],
        ["bench", "ingest", "--help"],
        ["import", "--help"],
    ):
        out = subprocess.run([str(EXE), *args], capture_output=True, text=True)
        assert out.returncode == 0, (args, out.stderr)
        assert "Usage:" in out.stdout and len(out.stdout) > 200


def test_init_reports_where_the_data_is(run) -> None:
    out = run("init")
    assert out.returncode == 0, out.stderr
    assert "database: postgresql+psycopg://" in out.stdout
    from promptlake.db.migrate import head_revision

    assert f"schema revision: {head_revision()}" in out.stdout
    assert "principal: " in out.stdout


def test_sql_in_three_formats_with_bound_parameters(run, lake) -> None:
    lake.project("p").log(prompt="it's; DROP TABLE x --", output="o", model="m1")
    query = "SELECT input_text, output FROM generations WHERE input_text = :q"
    q = "it's; DROP TABLE x --"
    table = run("sql", query, "--param", f"q={q}", "--project", "p")
    assert table.returncode == 0 and "DROP TABLE" in table.stdout and "(1 row)" in table.stdout
    csv_out = run("sql", query, "--param", f"q={q}", "--format", "csv", "--project", "p")
    assert csv_out.stdout.splitlines() == ["input_text,output", f"{q},o"]
    json_out = run("sql", query, "--param", f"q={q}", "--format", "json", "--project", "p")
    # no --project: every project of the principal's (here one)
    everywhere = run("sql", query, "--param", f"q={q}", "--format", "csv")
    assert everywhere.stdout.splitlines() == ["input_text,output", f"{q},o"]
    lake.project("empty-one")
    narrowed = run("sql", query, "--param", f"q={q}", "--format", "csv", "--project", "empty-one")
    assert narrowed.stdout.splitlines() == ["input_text,output"]
    assert json.loads(json_out.stdout) == {"input_text": q, "output": "o"}


def test_tables_show_stored_text_literally(run) -> None:
    """Text that looks like rich markup is data: shown as is, never styled or refused."""
    out = run("sql", "SELECT '[/x] closing tag' AS a, '[bold]b[/bold]' AS b")
    assert out.returncode == 0, out.stderr
    assert "[/x] closing tag" in out.stdout and "[bold]b[/bold]" in out.stdout


def test_sql_error_is_one_clear_line(run) -> None:
    out = run("sql", "SELECT nope FROM generations")
    assert out.returncode == 1
    assert out.stderr.startswith("error: running SQL:") and "nope" in out.stderr
    assert "Traceback" not in out.stderr


def test_stats_json(run, lake) -> None:
    proj = lake.project("p")
    with proj.session(end_user_id="u") as s:
        g = s.log(prompt="a", output="b", model="m1")
        s.log(prompt="c", output="d", model="m1", parent=g)
    proj.score(g, "ok", True)
    out = run("stats", "--project", "p", "--json")
    assert out.returncode == 0, out.stderr
    sections = {s["title"]: s["rows"] for s in json.loads(out.stdout)}
    assert sections["Projects"] == [{"project": "p", "sessions": 1, "generations": 2, "scores": 1}]
    assert sections["Chain lengths"] == [{"project": "p", "chain_length": 2, "chains": 1}]
    assert sections["Scores"][0]["share_true"] == "1.000"
    missing = run("stats", "--project", "nope")
    assert missing.returncode == 1 and "no project named 'nope'" in missing.stderr


def test_import_reports_each_rejected_line_and_exits_1(run, tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    lines = [json.dumps(good), "{not json", json.dumps({**good, "usage": {"prompt_tokens": -4}})]
    path.write_text("\n".join(lines) + "\n")
    out = run("import", str(path), "--format", "openai", "--project", "chats")
    assert out.returncode == 1
    assert "stored 1, rejected 2" in out.stdout
    assert ": line 2:" in out.stderr and ": line 3:" in out.stderr
    again = run("import", str(path), "--format", "openai", "--project", "chats")
    assert "stored 0, rejected 2" in again.stdout


def test_import_clean_file_exits_0(run, shared_data: Path) -> None:
    out = run(
        "import",
        str(shared_data / "alpaca_seed_tasks.jsonl"),
        "--format",
        "alpaca",
        "--project",
        "seeds",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("stored ") and ", rejected 0" in out.stdout


def test_synthetic_import_without_generator_is_refused(run, shared_data: Path) -> None:
    out = run(
        "import",
        str(shared_data / "alpaca_seed_tasks.jsonl"),
        "--format",
        "alpaca",
        "--project",
        "seeds",
        "--origin",
        "synthetic",
    )
    assert out.returncode != 0 and "generator" in out.stderr


def test_demo_loads_scores_and_reports_and_is_repeatable(run, dbq) -> None:
    first = run("demo")
    assert first.returncode == 0, first.stderr
    for heading in ("Generations per model", "Origin", "Sessions", "Chain lengths", "Scores"):
        assert heading in first.stdout
    _, before = dbq("SELECT count(*), count(DISTINCT origin) FROM generations")
    assert before[0][0] > 100 and before[0][1] == 2
    second = run("demo")
    assert second.returncode == 0 and "stored 0" in second.stdout
    _, after = dbq("SELECT count(*) FROM generations")
    assert after[0][0] == before[0][0]
