"""Importers on the real sample files and on hand-made broken ones, against PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from promptlake.errors import ConfigurationError, NotFoundError, ValidationError
from promptlake.ingest.importers import FORMATS, ImportReport, import_file


def scalar(lake, query: str, **params: Any) -> Any:
    return rows(lake, query, **params)[0][0]


def rows(lake, query: str, **params: Any) -> list[tuple]:
    """Rows as the project's admin sees them (row-level security: the test project)."""
    return lake.query(query, params, project="test-project")[1]


def write_lines(path: Path, lines: list[str | bytes | dict]) -> Path:
    with path.open("wb") as f:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            f.write((line.encode() if isinstance(line, str) else line) + b"\n")
    return path


def chat(user: str = "hi", reply: str = "hello", **extra: Any) -> dict:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return {"messages": messages, **extra}


# -- the real files ----------------------------------------------------------------------


def test_formats_are_exported() -> None:
    assert FORMATS == ("sharegpt", "openai", "alpaca", "mtbench", "csv")


def test_sharegpt_file_gives_one_session_and_one_chain_per_conversation(
    project, lake, shared_data: Path
) -> None:
    report = import_file(project, shared_data / "sharegpt_identity_conversations.json", "sharegpt")
    # 500 conversations of 1, 2 or 3 exchanges (167 + 166 + 167): 1000 assistant turns
    assert (report.stored, report.duplicates, report.rejected) == (1000, 0, [])
    assert (report.sessions, report.skipped, report.format) == (500, 0, "sharegpt")
    assert scalar(lake, "SELECT count(*) FROM sessions") == 500
    assert scalar(lake, "SELECT count(*) FROM generations WHERE session_id IS NULL") == 0
    assert rows(lake, "SELECT seq, count(*) FROM generations GROUP BY seq ORDER BY seq") == [
        (0, 500),
        (1, 333),
        (2, 167),
    ]
    # every link points at the previous turn of the same conversation, and only seq 0 has none
    links = rows(
        lake,
        """SELECT count(*), count(*) FILTER (WHERE p.session_id = g.session_id
                                              AND p.seq = g.seq - 1)
             FROM generations g JOIN generations p ON p.id = g.parent_id""",
    )
    assert links == [(500, 500)]
    assert scalar(lake, "SELECT count(*) FROM generations WHERE parent_id IS NULL") == 500
    assert scalar(lake, "SELECT count(DISTINCT origin) FROM generations") == 1

    (session_id,) = rows(lake, "SELECT id FROM sessions WHERE name = 'identity_0'")[0]
    history = project.history(session_id)
    assert [g.seq for g in history] == [0, 1]
    assert history[1].parent_id == history[0].id
    assert history[0].input_messages == [{"role": "user", "content": "Who are you?"}]
    assert [m["role"] for m in history[1].input_messages] == ["user", "assistant", "user"]
    assert history[1].input_messages[-1]["content"] == "Have a nice day!"
    assert history[1].output == "You too!"
    assert history[1].metadata["import"] == {
        "format": "sharegpt",
        "file": "sharegpt_identity_conversations.json",
        "record": "item 0",
        "id": "identity_0",
    }


def test_reimport_stores_nothing_twice(project, lake, shared_data: Path) -> None:
    path = shared_data / "mt_bench_questions.jsonl"
    answers = [shared_data / "mt_bench_gpt4_reference.jsonl"]
    first = import_file(project, path, "mtbench", answers=answers)
    again = import_file(project, path, "mtbench", answers=answers)
    assert (first.stored, first.duplicates) == (60, 0)
    assert (again.stored, again.duplicates, again.rejected) == (0, 60, [])
    assert again.sessions == first.sessions == 30
    assert scalar(lake, "SELECT count(*) FROM generations") == 60
    assert scalar(lake, "SELECT count(*) FROM sessions") == 30


def test_mtbench_turn_two_follows_turn_one(project, lake, shared_data: Path) -> None:
    report = import_file(
        project,
        shared_data / "mt_bench_questions.jsonl",
        "mtbench",
        answers=[shared_data / "mt_bench_gpt4_reference.jsonl"],
    )
    # 80 questions, 30 of them answered by the reference file, two turns each
    assert (report.stored, report.sessions, report.skipped, report.rejected) == (60, 30, 50, [])
    models = rows(
        lake, "SELECT DISTINCT m.name FROM generations g JOIN models m ON m.id = g.model_id"
    )
    assert models == [("gpt-4",)]
    assert scalar(lake, "SELECT count(*) FROM generations WHERE model_id IS NULL") == 0
    pairs = rows(
        lake,
        """SELECT t1.metadata->>'question_id', t1.input_messages, t1.output,
                  t2.input_messages, t1.seq, t2.seq, t1.session_id = t2.session_id
             FROM generations t2 JOIN generations t1 ON t1.id = t2.parent_id""",
    )
    assert len(pairs) == 30
    for _, first_input, first_output, second_input, seq1, seq2, same_session in pairs:
        assert (seq1, seq2, same_session) == (0, 1, True)
        assert len(first_input) == 1
        assert second_input[:2] == [*first_input, {"role": "assistant", "content": first_output}]
        assert second_input[2]["role"] == "user"
    question = json.loads((shared_data / "mt_bench_questions.jsonl").read_text().splitlines()[20])
    assert question["question_id"] == 101
    stored = rows(
        lake,
        """SELECT g.tags, g.metadata->>'category', m.name, g.input_messages->0->>'content'
             FROM generations g JOIN models m ON m.id = g.model_id
            WHERE g.metadata->>'question_id' = '101' AND g.seq = 0""",
    )
    assert stored == [([question["category"]], question["category"], "gpt-4", question["turns"][0])]


def test_mtbench_bad_questions_and_answers(project, lake, tmp_path: Path) -> None:
    questions = write_lines(
        tmp_path / "question.jsonl",
        [
            {
                "question_id": 1,
                "category": "math",
                "turns": ["1+1?", "times 3?"],
                "reference": ["2", "6"],
            },
            {"question_id": 2, "category": "writing", "turns": ["A poem.", "Shorter."]},
            {"question_id": 1, "turns": ["again"]},  # 3: a second question 1
            {"question_id": 3, "turns": "not a list"},  # 4
            {"question_id": 4, "turns": ["never answered"]},
        ],
    )
    answers = write_lines(
        tmp_path / "model-a.jsonl",
        [
            {"question_id": 1, "model_id": "a", "choices": [{"turns": ["2", "6"]}]},
            {"question_id": 2, "model_id": "a", "choices": [{"turns": ["Roses..."]}]},
            {"question_id": 99, "model_id": "a", "choices": [{"turns": ["?"]}]},  # 3
            {"question_id": 1, "model_id": "b", "choices": [{"turns": ["2", "6", "18"]}]},  # 4
            {"question_id": 1, "model_id": "b", "choices": [{"turns": ["two", "\u0000"]}]},
        ],
    )
    report = import_file(project, questions, "mtbench", answers=[answers])
    assert report.rejected == [
        ("line 3", "question_id: 1 already appeared on line 1"),
        ("line 4", "turns: must be a non-empty list of question texts"),
        ("model-a.jsonl line 3", "question_id: 99 is not a question of question.jsonl"),
        ("model-a.jsonl line 4", "choices[0].turns: has 3 answers to 2 turns"),
        ("model-a.jsonl line 5 (turn 2)", "output: contains a NUL byte at character 0"),
    ]
    # question 1 by a (2 turns) and by b (turn 1), question 2 by a (turn 1 only)
    assert (report.stored, report.sessions, report.skipped) == (4, 3, 1)
    stored = rows(
        lake,
        """SELECT s.name, g.seq, g.output, g.metadata->>'reference', g.tags
             FROM generations g JOIN sessions s ON s.id = g.session_id ORDER BY 1, 2""",
    )
    assert stored == [
        ("mt-bench 1 / a", 0, "2", "2", ["math"]),
        ("mt-bench 1 / a", 1, "6", "6", ["math"]),
        ("mt-bench 1 / b", 0, "two", "2", ["math"]),
        ("mt-bench 2 / a", 0, "Roses...", None, ["writing"]),
    ]


def test_alpaca_seed_tasks_give_one_generation_per_instance(
    project, lake, shared_data: Path
) -> None:
    path = shared_data / "alpaca_seed_tasks.jsonl"
    project.set_pii_policy(apply_at="export")  # compare the text exactly as in the file
    report = import_file(project, path, "alpaca")
    assert (report.stored, report.rejected, report.sessions) == (175, [], 0)
    tasks = [json.loads(line) for line in path.read_text().splitlines()]
    expected = {
        (
            task["id"],
            task["instruction"] + (f"\n\n{i['input']}" if i["input"].strip() else ""),
            i["output"],
            task["name"],
        )
        for task in tasks
        for i in task["instances"]
    }
    stored = rows(
        lake,
        """SELECT metadata->'import'->>'id', input_text, output, metadata->>'name'
             FROM generations""",
    )
    assert set(stored) == expected and len(stored) == 175
    with_input = sum(1 for t in tasks if t["instances"][0]["input"].strip())
    assert with_input == 125  # so both prompt shapes are covered
    labels = rows(
        lake,
        "SELECT metadata->'import'->>'record' FROM generations"
        " WHERE metadata->'import'->>'id' = 'seed_task_0'",
    )
    assert labels == [("line 1",)]


def test_alpaca_plain_records_in_a_json_array(project, lake, tmp_path: Path) -> None:
    path = tmp_path / "alpaca.json"
    records = [
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        {"instruction": "Say hi.", "input": "", "output": "Hi!"},
        {"instruction": "Say hi.", "output": "Hi!"},  # the same content again, another item
    ]
    path.write_text(json.dumps(records, indent=2))
    report = import_file(project, path, "alpaca", model="text-davinci-003", progress=True)
    assert (report.stored, report.rejected) == (3, [])
    assert sorted(rows(lake, "SELECT input_text, output FROM generations")) == [
        ("Add the numbers.\n\n2 and 3", "5"),
        ("Say hi.", "Hi!"),
        ("Say hi.", "Hi!"),
    ]
    assert rows(lake, "SELECT DISTINCT name FROM models") == [("text-davinci-003",)]


def test_openai_chat_lines(project, lake, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "chat.jsonl",
        [
            {
                "id": "chatcmpl-1",
                "model": "gpt-4o-mini",
                "temperature": 0.2,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Capital of France?"},
                    {"role": "assistant", "content": "Paris."},
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
                "metadata": {"ticket": "T-9"},
            },
            chat("a", "b"),
            "",
            chat("a", "b"),  # same content on another line: a different record
        ],
    )
    report = import_file(project, path, "openai", model="fallback-model")
    assert (report.stored, report.rejected, report.sessions) == (3, [], 0)
    stored = rows(
        lake,
        """SELECT jsonb_array_length(input_messages), output, prompt_tokens, completion_tokens,
                  params, g.metadata->>'ticket', m.name, session_id
             FROM generations g JOIN models m ON m.id = g.model_id
            WHERE g.metadata->'import'->>'id' = 'chatcmpl-1'""",
    )
    assert stored == [(2, "Paris.", 12, 2, {"temperature": 0.2}, "T-9", "gpt-4o-mini", None)]
    models = rows(
        lake,
        "SELECT m.name, count(*) FROM generations g JOIN models m ON m.id = g.model_id"
        " GROUP BY 1 ORDER BY 1",
    )
    assert models == [("fallback-model", 2), ("gpt-4o-mini", 1)]
    labels = rows(lake, "SELECT metadata->'import'->>'record' FROM generations ORDER BY 1")
    assert labels == [("line 1",), ("line 2",), ("line 4",)]


# -- bad input -----------------------------------------------------------------------------


def test_bad_lines_are_reported_and_good_ones_stored(project, lake, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "mixed.jsonl",
        [
            chat("first"),  # 1
            '{"messages": [',  # 2: malformed JSON
            b'{"messages": "caf\xe9"}',  # 3: Latin-1, not UTF-8
            b'{"messages": "a\x00b"}',  # 4: a raw NUL byte
            json.dumps(chat("nul \u0000 inside")),  # 5: an escaped NUL
            chat("tokens", usage={"prompt_tokens": -3, "completion_tokens": 1}),  # 6
            chat("origin", origin="invented"),  # 7
            "[1, 2]",  # 8: not an object
            {"messages": [{"role": "user", "content": "no reply"}]},  # 9
            chat("last"),  # 10
        ],
    )
    report = import_file(project, path, "openai")
    assert report.stored == 2
    reasons = dict(report.rejected)
    assert list(reasons) == [f"line {n}" for n in range(2, 10)]
    assert reasons["line 2"].startswith("json: ")
    assert reasons["line 3"] == "encoding: is not valid UTF-8 (byte 17: invalid continuation byte)"
    assert reasons["line 4"] == "encoding: contains a NUL byte at byte 15"
    assert "NUL" in reasons["line 5"] and reasons["line 5"].startswith("messages")
    assert reasons["line 6"] == "prompt_tokens: must not be negative, got -3"
    assert reasons["line 7"].startswith("origin: must be one of real, synthetic")
    assert reasons["line 8"] == "record: must be a JSON object, not an array"
    assert reasons["line 9"].startswith("messages: ")
    outputs = rows(lake, "SELECT input_messages->0->>'content' FROM generations ORDER BY 1")
    assert outputs == [("first",), ("last",)]
    # a second run reports the same lines and stores nothing twice
    again = import_file(project, path, "openai")
    assert (again.stored, again.duplicates, again.rejected) == (0, 2, report.rejected)


def test_sharegpt_rejects_bad_conversations_and_the_rest_of_a_broken_chain(
    project, lake, tmp_path: Path
) -> None:
    def conversation(cid: str, *pairs: tuple[str, str]) -> dict:
        turns = [{"from": s, "value": v} for s, v in pairs]
        return {"id": cid, "conversations": turns}

    path = write_lines(
        tmp_path / "conversations.jsonl",
        [
            conversation(
                "ok", ("human", "hi"), ("gpt", "hello"), ("human", "bye"), ("gpt", "ciao")
            ),
            conversation("who", ("human", "hi"), ("robot", "beep")),
            {"id": "no-turns"},
            conversation("quiet", ("system", "be nice"), ("human", "anyone?")),
            conversation(
                "broken",
                ("human", "one"),
                ("gpt", "1"),
                ("human", "two"),
                ("gpt", "\u0000"),  # PostgreSQL cannot store a NUL
                ("human", "three"),
                ("gpt", "3"),
            ),
        ],
    )
    report = import_file(project, path, "sharegpt", progress=False)
    reasons = dict(report.rejected)
    assert reasons["line 2"].startswith("conversations[1].from: 'robot' is not a known speaker")
    assert reasons["line 3"] == "conversations: must be a list of {from, value} objects"
    assert reasons["line 5 (turn 2)"] == "output: contains a NUL byte at character 0"
    assert reasons["line 5 (turn 3)"] == "parent: turn 2 was rejected"
    assert len(report.rejected) == 4
    assert (report.stored, report.skipped) == (3, 1)  # "quiet" has no assistant turn
    assert report.sessions == 2
    per_session = rows(
        lake,
        """SELECT s.name, count(g.id) FROM sessions s JOIN generations g ON g.session_id = s.id
            GROUP BY 1 ORDER BY 1""",
    )
    assert per_session == [("broken", 1), ("ok", 2)]
    assert scalar(lake, "SELECT count(*) FROM sessions") == 2  # none left empty


def test_broken_json_array_keeps_the_items_before_the_break(project, lake, tmp_path) -> None:
    path = tmp_path / "broken.json"
    good = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    path.write_text("[" + json.dumps(good) + ", " + json.dumps(good) + ', {"conversations": [')
    report = import_file(project, path, "sharegpt")
    assert report.stored == 2 and report.sessions == 2
    assert [item for item, _ in report.rejected] == ["item 2"]
    assert report.rejected[0][1].startswith("json: ")
    assert "the rest of the array cannot be read" in report.rejected[0][1]


def test_json_array_and_jsonl_of_the_same_records_share_ids(project, lake, tmp_path) -> None:
    records = [
        {
            "id": f"c{i}",
            "conversations": [
                {"from": "human", "value": f"q{i}"},
                {"from": "gpt", "value": f"a{i}"},
            ],
        }
        for i in range(3)
    ]
    as_array = tmp_path / "c.json"
    as_array.write_text(json.dumps(records))
    as_lines = write_lines(tmp_path / "c.jsonl", list(reversed(records)))
    assert import_file(project, as_array, "sharegpt").stored == 3
    again = import_file(project, as_lines, "sharegpt")  # other order, other file: same ids
    assert (again.stored, again.duplicates) == (0, 3)


def test_json_array_is_streamed_with_byte_progress(
    project, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the whole file must not be parsed at once")

    monkeypatch.setattr(json, "load", refuse)
    path = shared_data / "sharegpt_identity_conversations.json"  # 234 kB: several ijson reads
    seen: list[tuple[int, int]] = []
    report = import_file(
        project, path, "sharegpt", progress=lambda done, total: seen.append((done, total))
    )
    assert report.stored == 1000
    size = path.stat().st_size
    assert {total for _, total in seen} == {size}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == size
    assert len([d for d in done if d < size]) >= 2  # records arrived while the file was read


# -- CSV ---------------------------------------------------------------------------------


def test_csv_with_a_mapping(project, lake, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(
        b"question,answer,llm,tokens_in,user\n"
        b"What is 2+2?,4,gpt-4o,12,alice\n"
        b'"A question\non two lines",ok,gpt-4o,,bob\n'
        b"How many?,three,gpt-4o,many,carol\n"
        b"Negative?,no,gpt-4o,-2,dan\n"
        b"caf\xe9,bad bytes,gpt-4o,1,erin\n"
        b"Short row,only two\n"
        b"Last,one,,7.0,\n"
    )
    mapping = {
        "question": "prompt",
        "answer": "output",
        "llm": "model",
        "tokens_in": "prompt_tokens",
    }
    report = import_file(project, path, "csv", mapping=mapping, model="unknown-model")
    assert report.stored == 3
    reasons = dict(report.rejected)
    assert list(reasons) == ["line 5", "line 6", "line 7", "line 8"]
    assert reasons["line 5"] == (
        "prompt_tokens: column 'tokens_in' holds 'many', which is not a whole number"
    )
    assert reasons["line 6"] == "prompt_tokens: must not be negative, got -2"
    assert reasons["line 7"] == "encoding: line 7 is not valid UTF-8 (byte 3)"
    assert reasons["line 8"] == "row: has 2 cells; the header has 5"
    stored = rows(
        lake,
        """SELECT input_text, output, m.name, prompt_tokens, g.metadata->>'user',
                  g.metadata->'import'->>'record'
             FROM generations g JOIN models m ON m.id = g.model_id
            ORDER BY g.metadata->'import'->>'record'""",
    )
    assert stored == [
        ("What is 2+2?", "4", "gpt-4o", 12, "alice", "line 2"),
        ("A question\non two lines", "ok", "gpt-4o", None, "bob", "line 3"),
        ("Last", "one", "unknown-model", 7, None, "line 9"),
    ]


def test_csv_without_a_mapping_uses_field_names_and_groups_sessions(
    project, lake, tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "session,prompt,output,model,completion_tokens,cost_usd,latency_ms,tags,note\n"
        's1,hi,hello,m,3,0.0012,250.5,"greeting, short",first\n'
        "s1,bye,ciao,m,2,0.001,120,,\n"
        "s2,yo,hey,m,1,0,80,,\n"
    )
    report = import_file(project, path, "csv")
    assert (report.stored, report.sessions, report.rejected) == (3, 2, [])
    stored = rows(
        lake,
        """SELECT s.name, g.seq, g.completion_tokens, g.cost_usd, g.latency_ms, g.tags,
                  g.metadata->>'note'
             FROM generations g JOIN sessions s ON s.id = g.session_id ORDER BY s.name, g.seq""",
    )
    assert stored == [
        ("s1", 0, 3, Decimal("0.0012"), 250.5, ["greeting", "short"], "first"),
        ("s1", 1, 2, Decimal("0.001"), 120.0, [], None),
        ("s2", 0, 1, Decimal(0), 80.0, [], None),
    ]
    assert import_file(project, path, "csv").duplicates == 3


def test_csv_mapping_errors_are_raised_before_anything_is_stored(project, lake, tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("q,a\nhi,there\n")
    with pytest.raises(ConfigurationError, match="'answer_text'"):
        import_file(project, path, "csv", mapping={"q": "prompt", "a": "answer_text"})
    with pytest.raises(ConfigurationError, match="no column 'question'"):
        import_file(project, path, "csv", mapping={"question": "prompt"})
    with pytest.raises(ConfigurationError, match="prompt or messages"):
        import_file(project, path, "csv")  # no column is named like a field
    assert scalar(lake, "SELECT count(*) FROM generations") == 0


# -- arguments ---------------------------------------------------------------------------


def test_synthetic_without_generator_fails_before_reading(project, lake, shared_data) -> None:
    path = shared_data / "sharegpt_identity_conversations.json"
    with pytest.raises(ValidationError) as raised:
        import_file(project, path, "sharegpt", origin="synthetic")
    assert raised.value.field == "generator"
    with pytest.raises(ValidationError):  # the arguments are checked before the path
        import_file(project, path.with_name("missing.json"), "sharegpt", origin="synthetic")
    assert scalar(lake, "SELECT count(*) FROM generations") == 0
    assert scalar(lake, "SELECT count(*) FROM sessions") == 0


def test_synthetic_import_labels_every_record(project, lake, shared_data: Path) -> None:
    report = import_file(
        project,
        shared_data / "sharegpt_identity_conversations.json",
        "sharegpt",
        origin="synthetic",
        generator="fastchat-identity-template",
        model="vicuna",
    )
    assert report.stored == 1000
    assert rows(lake, "SELECT origin, generator, count(*) FROM generations GROUP BY 1, 2") == [
        ("synthetic", "fastchat-identity-template", 1000)
    ]


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"format": "yaml"}, ConfigurationError, "unknown format"),
        ({"format": "openai", "origin": "made-up"}, ValidationError, "origin"),
        ({"format": "openai", "generator": "x"}, ValidationError, "only synthetic"),
        ({"format": "mtbench"}, ConfigurationError, "answer files"),
        ({"format": "openai", "answers": ["a.jsonl"]}, ConfigurationError, "mtbench"),
        ({"format": "openai", "mapping": {"a": "prompt"}}, ConfigurationError, "csv"),
        ({"format": "csv", "mapping": {"a": "prompt", "b": "prompt"}}, ConfigurationError, "same"),
        ({"format": "openai", "model": " "}, ValidationError, "model"),
    ],
)
def test_bad_arguments(project, tmp_path: Path, arguments: dict, error: type, match: str) -> None:
    path = write_lines(tmp_path / "x.jsonl", [chat()])
    fmt = arguments.pop("format")
    with pytest.raises(error, match=match):
        import_file(project, path, fmt, **arguments)


def test_missing_files_are_named(project, tmp_path: Path) -> None:
    questions = write_lines(tmp_path / "q.jsonl", [{"question_id": 1, "turns": ["hi"]}])
    with pytest.raises(NotFoundError, match=r"nope\.jsonl"):
        import_file(project, questions, "mtbench", answers=[tmp_path / "nope.jsonl"])


def test_report_reads_as_one_line() -> None:
    report = ImportReport(Path("/x/a.jsonl"), "openai", stored=3, duplicates=2, sessions=0)
    report.rejected.append(("line 4", "json: Expecting value at column 1"))
    assert str(report) == "a.jsonl: stored 3, rejected 1, already stored 2 (0 sessions)"
