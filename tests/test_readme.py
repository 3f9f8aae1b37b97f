"""The README is checked: its Python runs, its commands exist, its variables are real."""

from __future__ import annotations

import re
from pathlib import Path

import click
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
    commands = set(re.findall(r"`promptlake ([a-z]+)((?: [a-z]+)?)", README))
    assert {"init", "demo", "import", "sql", "stats", "db", "bench", "dataset"} <= {
        c for c, _ in commands
    }
    for command, sub in commands:
        group = main.commands[command]
        args = [command]
        if isinstance(group, click.Group) and sub.strip() in group.commands:
            args.append(sub.strip())  # "promptlake dataset list": the subcommand's help
        result = runner.invoke(main, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
    subcommands = {(c, s.strip()) for c, s in commands if s}
    assert {("dataset", "list"), ("dataset", "export"), ("bench", "export")} <= subcommands


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


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", README)
    tests = [c for c in commands if c.endswith("python -m pytest")]
    assert len(tests) == 1, commands
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert tests[0] in ci.splitlines()
