"""How each import format maps one parsed record onto generations.

Pure functions, no database: each takes a :class:`~promptlake.ingest.sources.Record` and
returns the :class:`Unit` (generations, chaining, session) it becomes, or raises
:class:`BadRecord` naming the offending key of the data. ``importers.py`` stores the units.

- sharegpt: one session and one chain per conversation; each assistant turn is a
  generation whose input is the chat so far. An opening assistant turn (nothing to answer)
  is kept as context, not imported.
- openai: the last message is the output, the others the input; ``usage`` gives tokens,
  request parameters (temperature, ...) go to ``params``. No session (see importers.py).
- alpaca: prompt = instruction, plus a blank line and the input when there is one; the
  seed-task shape gives one generation per instance.
- mtbench: one chain per (question, model, choice), turn k+1's input holding turn k and
  its answer; category in ``tags`` and ``metadata``.
- csv: columns converted to fields; numbers parsed from text; unmapped columns go to
  ``metadata`` as text.

Keys of a JSON record that no field takes are kept in ``metadata``; a record's own
``origin`` and ``generator`` override the import's.
"""

from __future__ import annotations

import decimal
import json
from dataclasses import dataclass
from typing import Any, NoReturn

from ..errors import Problem
from .records import _brief
from .sources import Record, unreadable

SPEAKERS = {
    **dict.fromkeys(("human", "user"), "user"),
    **dict.fromkeys(("gpt", "assistant", "chatgpt", "bard", "bing"), "assistant"),
    "system": "system",
    **dict.fromkeys(("tool", "function", "observation"), "tool"),
}
OPENAI_PARAMS = (
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "seed",
    "frequency_penalty", "presence_penalty", "response_format", "tools", "tool_choice",
)  # fmt: skip
CSV_INTEGER = ("prompt_tokens", "completion_tokens", "seq")
CSV_NUMBER = ("cost_usd", "latency_ms")
CSV_JSON = ("messages", "params")
CSV_TEXT = ("prompt", "output", "model", "name", "status", "error", "created_at", "id",
            "session", "end_user_id", "origin", "generator")  # fmt: skip
CSV_FIELDS = (*CSV_TEXT, *CSV_INTEGER, *CSV_NUMBER, *CSV_JSON, "tags")
"""Fields a CSV column can fill. ``id`` is the row's own id; ``session`` a grouping key;
``end_user_id`` the person a session belongs to (rows of one end user without a ``session``
column share one session)."""


class BadRecord(Exception):
    """A record whose shape does not fit its format."""

    def __init__(self, *problems: Problem) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


def bad(field_name: str, reason: str) -> NoReturn:
    raise BadRecord(Problem(field_name, reason))


@dataclass
class Unit:
    """What one record becomes: generations logged in order, perhaps in one session."""

    label: str
    key: str  # the record's identity; generation i gets stable_id(project, format, key, i)
    generations: list[dict[str, Any]]
    part: str | None = None  # "turn" / "instance": each generation is labelled with it
    chained: bool = False  # each generation is the parent of the next
    session: dict[str, Any] | None = None  # arguments of Writer.session
    shared_session: str | None = None  # a session key several records share (csv)
    record_id: Any = None
    origin: Any = None
    generator: Any = None


def as_object(value: Any, where: str = "record") -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string"}.get(type(value), type(value).__name__)
        bad(where, f"must be a JSON object, not {kind}")
    return value


def own_id(value: Any) -> str | int | None:
    """A record's own id, if it has a usable one."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _unit(record: Record, obj: dict, generations: list, consumed: tuple, **options: Any) -> Unit:
    """A unit whose generations carry the record's unused keys in their metadata."""
    own = own_id(obj.get("id"))
    skip = {"id", "origin", "generator", *consumed}
    extras = {k: v for k, v in obj.items() if k not in skip}
    for values in generations:
        metadata = values.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            bad("metadata", "must be a JSON object")
        values["metadata"] = {**extras, **(metadata or {})}
    key = f"id={own}" if own is not None else record.key
    origin, generator = obj.get("origin"), obj.get("generator")
    return Unit(record.label, key, generations, record_id=own, origin=origin,
                generator=generator, **options)  # fmt: skip


def sharegpt(record: Record) -> Unit:
    obj = as_object(record.value)
    turns = obj.get("conversations")
    if not isinstance(turns, list):
        bad("conversations", "must be a list of {from, value} objects")
    system = obj.get("system")
    if system is not None and not isinstance(system, str):
        bad("system", "must be text")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    generations = []
    for i, turn in enumerate(turns):
        where = f"conversations[{i}]"
        turn = as_object(turn, where)
        speaker, value = turn.get("from"), turn.get("value")
        role = SPEAKERS.get(speaker.lower()) if isinstance(speaker, str) else None
        if role is None:
            known = ", ".join(SPEAKERS)
            bad(f"{where}.from", f"{_brief(speaker)} is not a known speaker ({known})")
        if not isinstance(value, str):
            bad(f"{where}.value", "must be text")
        if role == "assistant" and messages:
            generations.append(
                {"messages": list(messages), "output": value, "model": obj.get("model")}
            )
        messages.append({"role": role, "content": value})
    own = own_id(obj.get("id"))
    session = {"name": str(own) if own is not None else record.label}
    consumed = ("conversations", "system", "model")
    return _unit(record, obj, generations, consumed, part="turn", chained=True, session=session)


def openai(record: Record) -> Unit:
    obj = as_object(record.value)
    messages = obj.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        bad("messages", "must list the input messages, then the assistant's reply")
    *history, reply = messages
    role = reply.get("role") if isinstance(reply, dict) else None
    if role != "assistant":
        bad("messages", f"the last message must be the assistant's reply, not role {_brief(role)}")
    fields: dict[str, Any] = {"messages": history, "output": _text(reply.get("content"))}
    metadata = obj.get("metadata")
    if reply.get("tool_calls") is not None:
        metadata = {**as_object(metadata or {}, "metadata"), "tool_calls": reply["tool_calls"]}
    fields["metadata"] = metadata
    usage = obj.get("usage")
    if usage is not None:
        usage = as_object(usage, "usage")
        fields["prompt_tokens"] = usage.get("prompt_tokens")
        fields["completion_tokens"] = usage.get("completion_tokens")
    fields["model"] = obj.get("model")
    params = {k: obj[k] for k in OPENAI_PARAMS if k in obj}
    if params:
        fields["params"] = params
    return _unit(record, obj, [fields], ("messages", "metadata", "usage", "model", *OPENAI_PARAMS))


def _text(content: Any) -> str | None:
    """An OpenAI message content as text: a string, None, or text parts joined."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(texts)
    bad("messages", "the assistant's reply content must be text or a list of text parts")


def alpaca(record: Record) -> Unit:
    obj = as_object(record.value)
    instruction = obj.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        bad("instruction", "is required text")
    seed = "instances" in obj  # the seed-task shape: one generation per instance
    if seed and not isinstance(obj["instances"], list):
        bad("instances", "must be a list of {input, output} objects")
    pairs = (
        [(f"instances[{i}]", p) for i, p in enumerate(obj["instances"])] if seed else [("", obj)]
    )
    generations = []
    for where, pair in pairs:
        pair = as_object(pair, where or "record")
        given, output = pair.get("input") or "", pair.get("output")
        prefix = f"{where}." if where else ""
        if not isinstance(given, str):
            bad(f"{prefix}input", "must be text")
        if not isinstance(output, str):
            bad(f"{prefix}output", "is required text")
        prompt = instruction + ("\n\n" + given if given.strip() else "")
        generations.append({"prompt": prompt, "output": output})
    consumed = ("instruction", "input", "output", "instances")
    return _unit(record, obj, generations, consumed, part="instance" if seed else None)


def mtbench_question(record: Record, questions: dict[str, dict[str, Any]]) -> list[Unit]:
    """Remember a question (keyed by its id as text); it becomes generations with answers."""
    obj = as_object(record.value)
    qid = obj.get("question_id")
    if not isinstance(qid, int | str) or isinstance(qid, bool):
        bad("question_id", "is required (a number or a string)")
    turns = obj.get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        bad("turns", "must be a non-empty list of question texts")
    if str(qid) in questions:
        bad("question_id", f"{_brief(qid)} already appeared on {questions[str(qid)]['label']}")
    category, reference = obj.get("category"), obj.get("reference")
    questions[str(qid)] = {
        "id": qid,
        "turns": turns,
        "category": category if isinstance(category, str) and category.strip() else None,
        "reference": reference if isinstance(reference, list) else [],
        "label": record.label,
        "answered": False,
    }
    return []


def mtbench_answer(
    record: Record, questions: dict[str, dict[str, Any]], model: str | None, source: str
) -> list[Unit]:
    """The chains of one answer line: one per choice, in a session of its own."""
    obj = as_object(record.value)
    qid = obj.get("question_id")
    question = questions.get(str(qid)) if isinstance(qid, int | str) else None
    if question is None:
        bad("question_id", f"{_brief(qid)} is not a question of {source}")
    question["answered"] = True
    model = obj.get("model_id") or model
    if model is not None and not isinstance(model, str):
        bad("model_id", f"must be text, not {_brief(model)}")
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        bad("choices", "must be a non-empty list of {turns} objects")
    stamp = obj.get("tstamp") if isinstance(obj.get("tstamp"), int | float) else None
    category, asked = question["category"], question["turns"]
    tags = [category] if category else None
    units = []
    for c, choice in enumerate(choices):
        replies = as_object(choice, f"choices[{c}]").get("turns")
        if not isinstance(replies, list) or not all(isinstance(t, str) for t in replies):
            bad(f"choices[{c}].turns", "must be a list of answer texts")
        if len(replies) > len(asked):
            bad(f"choices[{c}].turns", f"has {len(replies)} answers to {len(asked)} turns")
        history: list[dict[str, str]] = []
        generations = []
        for k, reply in enumerate(replies):
            history.append({"role": "user", "content": asked[k]})
            meta = {"question_id": question["id"], "category": category, "turn": k + 1}
            if obj.get("answer_id") is not None:
                meta["answer_id"] = obj["answer_id"]
            if k < len(question["reference"]):
                meta["reference"] = question["reference"][k]
            generation = {"messages": list(history), "output": reply, "model": model}
            generation.update(tags=tags, metadata=meta, created_at=stamp)
            generations.append(generation)
            history.append({"role": "assistant", "content": reply})
        session = {
            "name": f"mt-bench {qid} / {model}",
            "tags": tags,
            "metadata": {"question_id": question["id"], "model_id": model},
            "started_at": stamp,
        }
        key = f"id={qid} model={model}" + (f" choice={c}" if c else "")
        units.append(Unit(record.label, key, generations, part="turn", chained=True,
                          session=session, record_id=question["id"]))  # fmt: skip
    return units


def csv_row(
    label: str, key: str, columns: list[str], cells: list[str], mapping: dict[str, str]
) -> Unit:
    if len(cells) != len(columns):
        bad("row", f"has {len(cells)} cells; the header has {len(columns)}")
    values: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    problems: list[Problem] = []
    for column, cell in zip(columns, cells, strict=True):
        target = mapping.get(column)
        if target is None:
            if column and cell != "":
                metadata[column] = cell
            continue
        try:
            values[target] = _cell(target, column, cell)
        except BadRecord as exc:
            problems.extend(exc.problems)
    if problems:
        raise BadRecord(*problems)
    own, shared = values.pop("id", None), values.pop("session", None)
    end_user = values.pop("end_user_id", None)
    origin, generator = values.pop("origin", None), values.pop("generator", None)
    values["metadata"] = metadata
    unit = Unit(label, f"id={own}" if own is not None else key, [values], record_id=own,
                origin=origin, generator=generator)  # fmt: skip
    if shared is not None:
        unit.session, unit.shared_session = {"name": shared}, f"csv={shared}"
    elif end_user is not None:
        unit.session, unit.shared_session = {"name": f"user {end_user}"}, f"user={end_user}"
    if end_user is not None and unit.session is not None:
        unit.session["end_user_id"] = end_user
    return unit


def _cell(target: str, column: str, cell: str) -> Any:
    """One CSV cell converted for ``target``; None when empty."""
    text = cell.strip() if target in (*CSV_INTEGER, *CSV_NUMBER, "tags") else cell
    if text == "":
        return None
    try:
        if target in CSV_INTEGER:
            number = decimal.Decimal(text)
            if number != number.to_integral_value():
                raise ValueError(text)
            if number.adjusted() > 18:  # past any integer column: never build the int
                bad(target, f"column {column!r} holds {_brief(cell)}, which is too large")
            return int(number)
        if target == "cost_usd":
            return decimal.Decimal(text)
        if target == "latency_ms":
            return float(decimal.Decimal(text))
    except (ValueError, ArithmeticError):
        kind = "a whole number" if target in CSV_INTEGER else "a number"
        bad(target, f"column {column!r} holds {_brief(cell)}, which is not {kind}")
    if target in CSV_JSON:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            bad(target, f"column {column!r} is not valid JSON: {exc.msg}")
        except (ValueError, RecursionError) as exc:
            bad(target, f"column {column!r}: {unreadable(exc).reason}")
    if target == "tags":
        return [t.strip() for t in text.split(",") if t.strip()]
    return text
