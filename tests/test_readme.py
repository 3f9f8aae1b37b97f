"""The README is checked: its Python runs, its commands exist, its variables are real."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from promptlake.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_python_examples_run(lake) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)
    assert namespace["text"] == "Summarize: ..."
    assert namespace["answer"]("hi") == "HI"
    assert namespace["w"].stats.stored == 10_000
    assert namespace["g"].input_text == "Mail me at <EMAIL>"
    assert namespace["proj"].reveal(namespace["g"])["input_text"] == "Mail me at jane@example.com"
    assert namespace["proj"].history(namespace["s"].id) == []  # u-42 was erased
    counts = dict(namespace["df"].itertuples(index=False))
    assert counts == {"real": 10_002, "synthetic": 1}


def test_documented_commands_exist_with_help() -> None:
    runner = CliRunner()
    commands = set(re.findall(r"`promptlake ([a-z]+)", README))
    assert {"init", "demo", "import", "sql", "stats", "db", "bench"} <= commands
    for command in commands:
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_setup_commands_match_ci() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    test_command = re.search(r"```bash\n(python3 -m venv .*pytest)\n```", README).group(1)
    assert test_command in ci


def test_documented_variables_are_the_ones_read() -> None:
    documented = set(re.findall(r"`(PROMPTLAKE_[A-Z_]+)`", README))
    source = "".join(
        p.read_text() for p in (Path(__file__).resolve().parents[1] / "platform").rglob("*.py")
    )
    conftest = (Path(__file__).parent / "conftest.py").read_text()
    read = set(re.findall(r'"(PROMPTLAKE_[A-Z_]+)"', source + conftest))
    assert documented == read
