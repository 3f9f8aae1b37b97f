"""Every text a user or model writes goes through the PII policy, at ingest and when stored
rows are anonymized again; what is derived from the text (full text, embeddings) follows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from promptlake.db.models import Base
from promptlake.privacy.coverage import COVERED, EXEMPT

TEXT_TYPES = (sa.String, sa.Text, pg.JSONB, sa.JSON, pg.ARRAY, sa.ARRAY)


def _text_columns_of_models() -> set[str]:
    return {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, TEXT_TYPES)
    }


def test_every_text_column_of_the_schema_is_covered_or_exempt(dbq) -> None:
    decided = set(COVERED) | set(EXEMPT)
    assert not set(COVERED) & set(EXEMPT)
    missing = sorted(_text_columns_of_models() - decided)
    assert not missing, f"decide whether the PII policy covers these columns: {missing}"
    # the migrated database, not only the models: a column added by a migration alone
    _, rows = dbq(
        "SELECT c.table_name || '.' || c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
        " AND c.table_name <> 'alembic_version'"
        " AND (c.data_type IN ('text', 'character varying', 'jsonb', 'json')"
        " OR c.udt_name IN ('_text', '_varchar'))"
    )
    missing = sorted({r[0] for r in rows} - decided)
    assert not missing, f"decide whether the PII policy covers these columns: {missing}"
    assert set(COVERED) <= {r[0] for r in rows}


# one distinct value per field, so a leak says where it came from
VALUES = {
    "prompt": "prompt.person@example.com",
    "part": "4111 1111 1111 1111",
    "tool_args": "tool.args@example.org",
    "tool_result": "+44 20 7946 0958",
    "anthropic_tool": "GB82 WEST 1234 5698 7654 32",
    "output": "output.person@example.net",
    "error": "AKIAIOSFODNN7EXAMPLE",
    "gen_meta": "meta.person@example.com",
    "gen_tag": "tag.person@example.com",
    "session_name": "Call (0117) 496 0479",
    "session_tag": "session.tag@example.com",
    "session_meta": "123-45-6789",
    "score_comment": "comment.person@example.com",
    "score_meta": "sk-proj-abcDEF1234567890abcdefGHIJklmn",
    "writer_comment": "writer.comment@example.com",
}


def _log_everything(project) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [
            {"type": "text", "text": f"my card is {VALUES['part']}"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {
                "name": "lookup", "arguments": f'{{"email": "{VALUES["tool_args"]}"}}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"phone {VALUES['tool_result']}"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "tu_1", "name": "pay",
             "input": {"iban": VALUES["anthropic_tool"]}},
        ]},
    ]  # fmt: skip
    with project.session(
        end_user_id="u-1",
        name=VALUES["session_name"],
        tags=[VALUES["session_tag"]],
        metadata={"ssn": VALUES["session_meta"], "n": 1},
    ) as s:
        g = s.log(
            prompt=f"hi {VALUES['prompt']}",
            messages=messages,
            output=f"reply to {VALUES['output']}",
            error=f"boom with key {VALUES['error']}",
            metadata={"customer": {"email": VALUES["gen_meta"]}, "count": 3},
            tags=[VALUES["gen_tag"], "beta"],
        )
    project.score(g, "quality", 0.5, comment=f"from {VALUES['score_comment']}",
                  metadata={"key": VALUES["score_meta"]})  # fmt: skip
    with project.writer() as w:
        w.score(g, "again", 1.0, comment=f"mail {VALUES['writer_comment']}")
    return g


def _leaks(dbq, values) -> dict[str, list[str]]:
    _, tables = dbq(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        " AND table_type = 'BASE TABLE'"
    )
    found: dict[str, list[str]] = {}
    for (table,) in tables:
        for name, value in values.items():
            _, hits = dbq(
                f'SELECT count(*) FROM "{table}" t WHERE to_jsonb(t)::text ILIKE :v',
                {"v": f"%{value}%"},
            )
            if hits[0][0]:
                found.setdefault(name, []).append(table)
    return found


def test_every_field_a_user_or_model_writes_is_anonymized_at_ingest(project, dbq) -> None:
    g = _log_everything(project)
    assert _leaks(dbq, VALUES) == {}
    stored = project.generation(g.id)
    assert stored.input_messages[1]["content"][0]["text"].startswith("my card is <CREDIT_CARD_")
    assert stored.input_messages[1]["content"][1] == {
        "type": "image_url", "image_url": {"url": "https://example.com/a.png"},
    }  # fmt: skip
    assert stored.input_messages[2]["tool_calls"][0]["id"] == "call_1"  # structure is kept
    assert "<EMAIL_" in stored.input_messages[2]["tool_calls"][0]["function"]["arguments"]
    assert stored.metadata["count"] == 3 and "beta" in stored.tags
    _, fields = dbq("SELECT DISTINCT field FROM pii_findings")
    fields = {r[0] for r in fields}
    assert {"input_text", "output", "error", "input_messages[1].content[0].text",
            "input_messages[2].tool_calls[0].function.arguments", "metadata.customer.email",
            "tags[0]"} <= fields  # fmt: skip
    assert any(f.startswith("scores[") and f.endswith(".comment") for f in fields)


def test_trace_errors_and_rendered_template_variables_are_anonymized(project, dbq) -> None:
    @project.trace(model="m")
    def charge(card: str) -> str:
        raise ValueError(f"card {card} declined for jane.trace@example.com")

    with pytest.raises(ValueError):
        charge("5555 5555 5555 4444")
    version = project.prompts.register("greet", "Write to {email} about {topic}")
    project.log(prompt=version.render(email="var.person@example.com", topic="refunds"),
                output="ok", prompt_version=version)  # fmt: skip
    leaks = _leaks(dbq, {"card": "5555 5555 5555 4444", "trace": "jane.trace@example.com",
                         "var": "var.person@example.com"})  # fmt: skip
    assert leaks == {}
    _, errors = dbq("SELECT error FROM generations WHERE status = 'error'")
    assert errors[0][0].startswith("ValueError: card <CREDIT_CARD_")


def test_reanonymizing_updates_full_text_and_embeddings(project, dbq) -> None:
    project.set_pii_policy({"EMAIL": "redact"}, apply_at="export")  # stored as written
    raw = "visible.person@example.com"
    first = project.log(prompt=f"write to {raw} today", output="sure")
    list_form = project.log(
        messages=[{"role": "user", "content": [{"type": "text", "text": f"cc {raw}"}]}],
        output="ok",
    )
    untouched = project.log(prompt="nothing personal here", output="fine")
    project.embed("hashing-384")
    assert {h.generation_id for h in project.search(raw, mode="text")} == {first.id, list_form.id}

    project.set_pii_policy({"EMAIL": "redact"})
    report = project.anonymize()
    assert (report.rows, report.changed) == (3, 2)
    assert report.reindexed == 2 and report.embeddings_dropped == 2
    assert project.search(raw, mode="text") == []
    assert project.search("visible", mode="text") == []
    assert {h.generation_id for h in project.search("write today", mode="text")} == {first.id}
    assert _leaks(dbq, {"raw": raw}) == {}
    _, vectors = dbq("SELECT generation_id FROM generation_embeddings")
    assert {r[0] for r in vectors} == {untouched.id}  # the others wait for `embed`
    project.embed("hashing-384")
    _, vectors = dbq("SELECT count(*) FROM generation_embeddings")
    assert vectors == [(3,)]
    # a second run finds nothing left to do
    again = project.anonymize()
    assert (again.rows, again.changed, again.reindexed) == (0, 0, 0)


def test_reanonymizing_reaches_sessions_and_scores(project, dbq) -> None:
    project.set_pii_policy({"EMAIL": "keep"}, apply_at="export")
    with project.session(end_user_id="u", name="s", metadata={"mail": "s.meta@example.com"}) as s:
        g = s.log(prompt="q", output="a")
    project.score(g, "q", 1.0, comment="ask c.comment@example.com")
    assert set(_leaks(dbq, {"s": "s.meta@example.com", "c": "c.comment@example.com"})) == {
        "s", "c"
    }  # fmt: skip
    project.set_pii_policy({"*": "redact"})
    report = project.anonymize()
    assert (report.sessions_changed, report.scores_changed) == (1, 1)
    assert _leaks(dbq, {"s": "s.meta@example.com", "c": "c.comment@example.com"}) == {}
    _, comments = dbq("SELECT comment FROM scores")
    assert comments == [("ask <EMAIL>",)]


def test_ner_detector_is_off_by_default_and_pseudonymizes_names(project) -> None:
    spacy = pytest.importorskip("spacy.util", reason="the ner extra is not installed")
    from promptlake.privacy.detect import NER_MODELS

    if not any(spacy.is_package(name) for name in NER_MODELS):
        pytest.skip("no spaCy model installed")
    text = "Hello, my name is Margaret Thompson and I moved to Manchester last year."
    assert project.log(prompt=text, output="ok").input_text == text  # default: patterns only
    project.set_pii_policy({"*": "pseudonymize"}, detectors=("pattern", "ner"))
    stored = project.log(prompt=text, output="ok").input_text
    assert "Margaret" not in stored and "<PERSON_" in stored
    assert "Manchester" not in stored and "<LOCATION_" in stored
