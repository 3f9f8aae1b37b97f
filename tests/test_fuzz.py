"""Hypothesis fuzzing of every way data comes in: ``log``, ``writer.log``, ``score`` and
each import format.

Whatever is passed, the outcome is a stored row or a :class:`ValidationError` naming a
field (an importer: a rejection naming the line or item), never another exception and
never a silent drop: every record is found stored, rejected with its label, or counted as
skipped. Values mix plausible data with junk: NUL and lone surrogates, NaN and infinities,
integers past every column, nesting to 10,000 levels, cycles, keys that are not text,
times out of range, objects that are not JSON. Each test counts the examples it tried and
their outcomes; the counts are printed in the terminal summary ("fuzzing") and with
``-s``. ``PROMPTLAKE_FUZZ_SCALE`` multiplies the number of examples (default 1).
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import decimal
import json
import os
import re
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlake import ValidationError
from promptlake.db.models import SCORE_SOURCES
from promptlake.ingest.records import GENERATION_FIELDS

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # big reprs
SCALE = float(os.environ.get("PROMPTLAKE_FUZZ_SCALE", "1"))


def fuzz(examples: int):
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        database=None,  # no .hypothesis folder in the checkout
        suppress_health_check=list(HealthCheck),
    )


def nest(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


CYCLE: dict = {}
CYCLE["again"] = CYCLE

# -- values -------------------------------------------------------------------------------

ODD_CHARS = st.sampled_from(["\x00", "\ud800", "\udfff", "\n", "\u2028", "é", "😀", "'", ":x", "%"])
ODD_TEXT = st.lists(st.one_of(st.characters(), ODD_CHARS), max_size=12).map("".join)
TEXT = st.one_of(st.text(max_size=12), st.text(max_size=12), ODD_TEXT)
BIG = st.builds(  # built, not listed: hypothesis prints its strategies
    lambda sign, digits: sign * 10**digits,
    st.sampled_from([1, -1]),
    st.sampled_from([10, 19, 400, 1001, 4000]),
)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), BIG, st.floats(), TEXT)
JSONISH = st.recursive(
    JSON_SCALAR,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.dictionaries(st.one_of(TEXT, st.integers()), kids, max_size=3),
    ),
    max_leaves=8,
)
DEEP = st.builds(nest, st.sampled_from([99, 100, 101, 150, 2_000, 10_000]), JSON_SCALAR)
TIMEZONES = st.builds(
    dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))
)
OTHER = st.one_of(
    st.binary(max_size=8),
    st.datetimes(timezones=st.one_of(st.none(), TIMEZONES)),
    st.uuids(),
    st.decimals(),
    st.sets(st.integers(), max_size=3),
    st.tuples(TEXT, st.integers()),
    st.just(CYCLE),
    st.builds(object),
)
ANY = st.one_of(JSONISH, DEEP, OTHER)


def either(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly plausible values, sometimes anything at all (a mapped copy weights the good
    branch: hypothesis merges identical branches of a one_of)."""
    return st.one_of(good, good.map(lambda value: value), ANY)


MESSAGE = st.fixed_dictionaries(
    {"role": either(st.sampled_from(["system", "user", "assistant", "tool"]))},
    optional={"content": st.one_of(TEXT, JSONISH, DEEP)},
)
ATTACHMENT = st.fixed_dictionaries(
    {},
    optional={
        "kind": either(st.sampled_from(["image", "audio", "video", "file"])),
        "mime_type": either(st.just("image/png")),
        "data": either(st.binary(max_size=16)),
        "uri": either(st.just("s3://bucket/x.png")),
        "role": either(st.sampled_from(["input", "output"])),
        "size_bytes": either(st.integers()),
    },
)
TIMES = st.one_of(
    st.floats(),
    st.integers(),
    BIG,
    st.datetimes(timezones=st.one_of(st.none(), TIMEZONES)),
    st.datetimes().map(dt.datetime.isoformat),
    TEXT,
)
OBJECTS = st.one_of(st.dictionaries(TEXT, JSONISH, max_size=3), DEEP, st.just(CYCLE))
CLEAN_TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=12)
CLEAN_JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**60), 2**60),
        st.floats(allow_nan=False, allow_infinity=False), CLEAN_TEXT,
    ),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(CLEAN_TEXT, kids, max_size=3)
    ),
    max_leaves=8,
)  # fmt: skip
CLEAN_OBJECT = st.dictionaries(CLEAN_TEXT, CLEAN_JSON, max_size=3)
PLAUSIBLE = st.fixed_dictionaries(
    {"prompt": TEXT},
    optional={
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["system", "user", "assistant"]), "content": TEXT}
            ),
            min_size=1,
            max_size=3,
        ),
        "output": TEXT,
        "status": st.sampled_from(["ok", "error"]),
        "origin": st.just("real"),
        "model": TEXT,
        "name": TEXT,
        "params": CLEAN_OBJECT,
        "metadata": st.one_of(CLEAN_OBJECT, CLEAN_OBJECT, OBJECTS),
        "lineage": CLEAN_OBJECT,
        "tags": st.lists(TEXT, max_size=3),
        "prompt_tokens": st.integers(0, 10**6),
        "completion_tokens": st.integers(0, 10**6),
        "cost_usd": st.floats(0, 100),
        "latency_ms": st.floats(0, 1e5),
        "created_at": st.one_of(TIMES, st.floats(0, 4e9)),
        "id": st.uuids(),
        "attachments": st.lists(ATTACHMENT, max_size=1),
    },
)
FIELDS = sorted(GENERATION_FIELDS | {"temperature"})
JUNK = st.dictionaries(st.sampled_from(FIELDS), st.one_of(ANY, st.uuids()), max_size=2)
GENERATION = st.builds(lambda base, junk: {**base, **junk}, PLAUSIBLE, st.one_of(st.just({}), JUNK))
"""A plausible generation, sometimes with one or two fields set to anything at all."""


# -- bookkeeping --------------------------------------------------------------------------


@pytest.fixture
def tally(request: pytest.FixtureRequest, fuzz_report: list[str]) -> Iterator[collections.Counter]:
    counts: collections.Counter = collections.Counter()
    yield counts
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "examples")
    line = (
        f"{request.node.name}: {counts['examples']} examples tried,"
        f" {counts['unhandled']} unhandled exceptions; {detail}"
    )
    fuzz_report.append(line)
    print(f"\n{line}")


def guarded(counts: collections.Counter, call, *args, **kwargs):
    """Run ``call``; count an exception that is not a ValidationError, and re-raise it."""
    counts["examples"] += 1
    try:
        return call(*args, **kwargs)
    except ValidationError:
        raise
    except BaseException as exc:
        counts["unhandled"] += 1
        # hypothesis may fail to print a 10,000-level example: say where it broke first
        frames = traceback.extract_tb(exc.__traceback__)[-4:]
        print(f"unhandled {type(exc).__name__}: {exc!s:.200}", *traceback.format_list(frames))
        raise


def stored(project, table: str, row_id: uuid.UUID) -> bool:
    _, rows = project.query(f"SELECT count(*) FROM {table} WHERE id = :id", {"id": str(row_id)})
    return rows[0][0] == 1


# -- the API ------------------------------------------------------------------------------


@fuzz(150)
@given(fields=GENERATION)
def test_log_stores_or_names_the_field(project, tally, fields) -> None:
    try:
        g = guarded(tally, project.log, **fields)
    except ValidationError as exc:
        assert exc.problems and all(p.field and p.reason for p in exc.problems)
        tally["rejected"] += 1
        return
    tally["stored"] += 1
    assert stored(project, "generations", g.id)


@fuzz(40)
@given(records=st.lists(GENERATION, min_size=1, max_size=6), batch_size=st.integers(1, 4))
def test_writer_stores_or_sets_aside_every_record(project, tally, records, batch_size) -> None:
    def run() -> list:
        with project.writer(batch_size) as w:
            ids = [w.log(**fields) for fields in records]
        return [ids, w]

    ids, w = guarded(tally, run)
    labels = {r.item for r in w.rejected}
    assert all(p.field and p.reason for r in w.rejected for p in r.problems)
    for k, gid in enumerate(ids, 1):
        if f"record {k}" in labels:
            tally["rejected"] += 1
        else:
            assert gid is not None and stored(project, "generations", gid), (k, records[k - 1])
            tally["stored"] += 1


@fuzz(80)
@given(
    target=st.one_of(st.just("logged"), st.just("logged"), st.uuids(), ANY),
    name=st.one_of(st.sampled_from(["helpful", "accuracy", "tone"]), either(TEXT)),
    value=st.one_of(st.floats(), st.integers(), BIG, st.booleans(), TEXT, ANY),
    source=either(st.sampled_from(SCORE_SOURCES)),
    comment=st.one_of(st.none(), st.none(), TEXT, ANY),
    metadata=st.one_of(st.none(), st.none(), CLEAN_OBJECT, OBJECTS, ANY),
    buffered=st.booleans(),
)
def test_score_stores_or_names_the_field(
    project, tally, target, name, value, source, comment, metadata, buffered
) -> None:
    generation = project.log(prompt="p", output="o") if target == "logged" else target
    options = {"source": source, "comment": comment, "metadata": metadata}
    if buffered:  # the writer's score: None and a rejection, or stored at the flush
        with project.writer() as w:
            sid = guarded(tally, w.score, generation, name, value, **options)
        if w.rejected:
            assert sid is None or len(w.rejected) == 1
            tally["rejected"] += 1
        else:
            assert sid is not None and stored(project, "scores", sid)
            tally["stored"] += 1
        return
    try:
        score = guarded(tally, project.score, generation, name, value, **options)
    except ValidationError as exc:
        assert exc.problems and all(p.field for p in exc.problems)
        tally["rejected"] += 1
        return
    assert stored(project, "scores", score.id)
    tally["stored"] += 1


# -- importers ----------------------------------------------------------------------------

RAW_LINES = st.sampled_from(
    [
        "[" * 10_000 + "]" * 10_000,  # deeper than Python's json reads
        '{"n": ' + "7" * 5_000 + "}",  # more digits than Python converts
        "not json",
        "{",
        "[]",
        "null",
        '"just text"',
        '{"nan": NaN, "inf": Infinity}',
    ]
).map(str.encode) | st.sampled_from([b"\xff\xfe bad utf-8", b'{"a": "\x00"}', b"\x00"])
SPEAKER = either(st.sampled_from(["human", "gpt", "system", "tool", "alien"]))
JSON_SAFE_DEEP = st.builds(nest, st.sampled_from([99, 100, 101, 150, 400]), st.integers())
JSON_TEXT = st.one_of(TEXT, TEXT, JSONISH, JSON_SAFE_DEEP)
EXTRA = st.one_of(CLEAN_JSON, CLEAN_JSON, JSONISH, JSON_SAFE_DEEP)
ROLES = st.sampled_from(["system", "user", "assistant", "tool", "robot"])

RECORDS = {
    "sharegpt": st.fixed_dictionaries(
        {
            "conversations": st.one_of(
                st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=3).map(
                    lambda pairs: [
                        {"from": who, "value": text}
                        for question, answer in pairs
                        for who, text in (("human", question), ("gpt", answer))
                    ]
                ),
                st.lists(
                    st.fixed_dictionaries({"from": SPEAKER, "value": either(TEXT)}), max_size=4
                ),
                EXTRA,
            )
        },
        optional={"id": EXTRA, "system": JSON_TEXT, "model": JSON_TEXT, "extra": EXTRA},
    ),
    "openai": st.fixed_dictionaries(
        {
            "messages": st.one_of(
                st.tuples(TEXT, TEXT).map(
                    lambda qa: [
                        {"role": "user", "content": qa[0]},
                        {"role": "assistant", "content": qa[1]},
                    ]
                ),
                st.lists(
                    st.fixed_dictionaries(
                        {"role": ROLES}, optional={"content": JSON_TEXT, "tool_calls": EXTRA}
                    ),
                    max_size=4,
                ),
                EXTRA,
            )
        },
        optional={
            "usage": st.one_of(
                st.fixed_dictionaries(
                    {}, optional={"prompt_tokens": EXTRA, "completion_tokens": EXTRA}
                ),
                EXTRA,
            ),
            "model": JSON_TEXT,
            "temperature": EXTRA,
            "metadata": EXTRA,
            "id": EXTRA,
        },
    ),
    "alpaca": st.fixed_dictionaries(
        {"instruction": st.one_of(TEXT, JSON_TEXT), "output": st.one_of(TEXT, JSON_TEXT)},
        optional={
            "input": JSON_TEXT,
            "instances": st.lists(
                st.fixed_dictionaries({}, optional={"input": JSON_TEXT, "output": JSON_TEXT}),
                max_size=3,
            ),
            "note": EXTRA,
        },
    ),
}


def dump(value: Any, ascii_only: bool) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=ascii_only)
    except (ValueError, TypeError, RecursionError):  # not JSON, or Python refuses: a stand-in
        text = '{"unwritable": true}'
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become invalid UTF-8


def line_number(label: str) -> int | None:
    found = re.match(r"(?:\S+ )?(?:line|item) (\d+)", label)
    return int(found.group(1)) if found else None


def stored_labels(project, file_name: str) -> set[int]:
    _, rows = project.query(
        "SELECT DISTINCT metadata->'import'->>'record' FROM generations"
        " WHERE metadata->'import'->>'file' = :f",
        {"f": file_name},
    )
    return {n for (label,) in rows if (n := line_number(label)) is not None}


def check_accounting(project, report, file_name: str, numbers: list[int], tally) -> None:
    """Every record of the file is stored, rejected with its label, or counted: skipped
    (nothing to import) or a duplicate (its own id was stored before, from another file)."""
    rejected = {n for item, _ in report.rejected if (n := line_number(item)) is not None}
    ends = [line_number(item) or 0 for item, why in report.rejected if "the rest of the" in why]
    if ends:  # a JSON array the parser cannot go on reading: the rest is reported lost
        rejected |= {n for n in numbers if n >= min(ends)}
    stored = stored_labels(project, file_name)
    unaccounted = set(numbers) - rejected - stored
    assert len(unaccounted) <= report.skipped + report.duplicates, (sorted(unaccounted), report)
    tally["records"] += len(numbers)
    tally["stored rows"] += report.stored
    tally["rejections"] += len(report.rejected)
    tally["skipped"] += report.skipped


@pytest.mark.parametrize("fmt", sorted(RECORDS))
@fuzz(25)
@given(
    data=st.data(),
    ascii_only=st.booleans(),
    as_array=st.booleans(),
)
def test_import_keeps_every_good_record_and_names_every_bad_one(
    project, tmp_path: Path, tally, fmt, data, ascii_only, as_array
) -> None:
    records = data.draw(st.lists(RECORDS[fmt], max_size=5))
    raw = [] if as_array else data.draw(st.lists(RAW_LINES, max_size=3))
    lines = [dump(r, ascii_only) for r in records] + raw
    lines = data.draw(st.permutations(lines)) if lines else lines
    path = tmp_path / f"{uuid.uuid4().hex}.json{'' if as_array else 'l'}"
    if as_array:
        path.write_bytes(b"[" + b",\n".join(lines) + b"]")
        numbers = list(range(len(lines)))
    else:
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        numbers = [i for i, line in enumerate(lines, 1) if line.strip()]
    report = guarded(tally, project.import_file, path, fmt)
    if not as_array and lines and lines[0].startswith(b"["):  # read as a JSON array, then
        if len(numbers) > 1:  # the lines after the first are reported as not read
            assert any("the rest of the" in why for _, why in report.rejected), report
        numbers = []  # and line 1 is one array: its items are what it holds
    check_accounting(project, report, path.name, numbers, tally)


CSV_COLUMNS = ["prompt", "output", "prompt_tokens", "latency_ms", "cost_usd", "created_at",
               "messages", "params", "tags", "seq", "note"]  # fmt: skip
PLAUSIBLE_CELLS = {
    "prompt": st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=12),
    "prompt_tokens": st.integers(0, 10**6).map(str),
    "latency_ms": st.floats(0, 1e5).map(str),
    "created_at": st.sampled_from(["", "2024-05-01T10:00:00Z"]),
    "params": st.sampled_from(["", '{"temperature": 0.2}']),
}
CELL = st.one_of(
    TEXT,
    st.integers().map(str),
    st.floats().map(str),
    st.sampled_from(
        [
            "",
            " ",
            "1e999999999",
            "9" * 5_000,
            "NaN",
            "-Infinity",
            "sNaN",
            "2.5",
            "[" * 5_000 + "]" * 5_000,
            '[{"role": "user", "content": "hi"}]',
            '{"t": 0.5}',
            "1e15",
            "2024-01-01T00:00:00Z",
            "a,b",
        ]
    ),
    JSONISH.map(lambda v: dump(v, True).decode()),
)


@fuzz(25)
@given(
    rows=st.lists(
        st.tuples(*(st.one_of(PLAUSIBLE_CELLS.get(c, st.just("")), CELL) for c in CSV_COLUMNS)),
        max_size=6,
    )
)
def test_csv_import_keeps_every_good_row_and_names_every_bad_one(
    project, tmp_path: Path, tally, rows
) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    with path.open("w", encoding="utf-8", errors="surrogatepass", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        out.writerows(rows)
    report = guarded(tally, project.import_file, path, "csv")
    assert report.stored + report.duplicates + len(report.rejected) == len(rows), report
    tally["records"] += len(rows)
    tally["stored rows"] += report.stored
    tally["rejections"] += len(report.rejected)


QUESTION = st.fixed_dictionaries(
    {"question_id": either(st.integers(0, 5)), "turns": either(st.lists(TEXT, max_size=2))},
    optional={"category": JSON_TEXT, "reference": EXTRA},
)
ANSWER = st.fixed_dictionaries(
    {
        "question_id": either(st.integers(0, 5)),
        "choices": either(
            st.lists(
                st.fixed_dictionaries({"turns": either(st.lists(TEXT, max_size=2))}), max_size=2
            )
        ),
    },
    optional={"model_id": JSON_TEXT, "tstamp": either(st.floats()), "answer_id": EXTRA},
)


@fuzz(25)
@given(
    questions=st.lists(QUESTION, max_size=4),
    answers=st.lists(ANSWER, max_size=4),
    raw=st.lists(RAW_LINES, max_size=2),
    ascii_only=st.booleans(),
)
def test_mtbench_import_keeps_every_good_answer_and_names_every_bad_one(
    project, tmp_path: Path, tally, questions, answers, raw, ascii_only
) -> None:
    stem = uuid.uuid4().hex
    qpath, apath = tmp_path / f"{stem}-q.jsonl", tmp_path / f"{stem}-a.jsonl"
    qpath.write_bytes(b"".join(dump(q, ascii_only) + b"\n" for q in questions))
    alines = [dump(a, ascii_only) for a in answers] + raw
    apath.write_bytes(b"".join(line + b"\n" for line in alines))
    report = guarded(tally, project.import_file, qpath, "mtbench", answers=[apath], model="m")
    if alines and alines[0].startswith(b"["):  # read as a JSON array: see the import test
        if len(alines) > 1:
            assert any("the rest of the" in why for _, why in report.rejected), report
        alines = []
    rejected = {
        n for item, _ in report.rejected if item.startswith(apath.name) and (n := line_number(item))
    }
    stored = stored_labels(project, qpath.name)  # rows name the import's (questions) file
    unaccounted = {n for n, line in enumerate(alines, 1) if line.strip()} - rejected - stored
    assert len(unaccounted) <= report.skipped + report.duplicates, (sorted(unaccounted), report)
    tally["records"] += len(questions) + len(alines)
    tally["stored rows"] += report.stored
    tally["rejections"] += len(report.rejected)


def test_decimal_and_uuid_are_not_json_but_say_so(project) -> None:
    """Two of the junk kinds above, pinned: the reason names the path and the type."""
    with pytest.raises(ValidationError, match=r"metadata: \$\.d is a Decimal, which is not JSON"):
        project.log(prompt="p", metadata={"d": decimal.Decimal("1.5")})
    with pytest.raises(ValidationError, match=r"params: \$\[0\]|params: must be a JSON object"):
        project.log(prompt="p", params=[uuid.uuid4()])
