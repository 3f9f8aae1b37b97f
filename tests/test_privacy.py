"""PII handling in the database path: policies at ingest, findings, vault, retro-anonymization,
erasure with tombstones, keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import promptlake
from promptlake import PermissionDeniedError, ValidationError

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
TEXT = f"Reach me at {EMAIL} or charge card {CARD}, thanks"


def test_default_policy_pseudonymizes_at_ingest_and_records_findings(project, dbq) -> None:
    assert project.pii_policy().version == 0  # the default until one is set
    g = project.log(prompt=TEXT, output=f"Noted, {EMAIL}.", model="m")
    assert EMAIL not in g.input_text and "4111" not in g.input_text
    assert g.input_text.startswith("Reach me at <EMAIL_") and "<CREDIT_CARD_" in g.input_text
    pseudonym = g.input_text.split()[3]
    assert pseudonym in g.output  # the same address gets the same pseudonym
    again = project.log(prompt=f"{EMAIL.upper()} again", output="ok")
    assert again.input_text.split()[0] == pseudonym  # normalised: case does not matter

    _, stored = dbq("SELECT input_text, output FROM generations WHERE id = :g", {"g": g.id})
    assert stored == [(g.input_text, g.output)]
    _, findings = dbq(
        "SELECT field, entity_type, start_offset, end_offset, operator, policy_version"
        " FROM pii_findings WHERE generation_id = :g ORDER BY field, start_offset",
        {"g": g.id},
    )
    start = TEXT.index(EMAIL)
    assert findings == [
        ("input_text", "EMAIL", start, start + len(EMAIL), "pseudonymize", 0),
        ("input_text", "CREDIT_CARD", TEXT.index(CARD), TEXT.index(CARD) + len(CARD),
         "pseudonymize", 0),
        ("output", "EMAIL", 7, 7 + len(EMAIL), "pseudonymize", 0),
    ]  # fmt: skip
    # no raw value anywhere in the database
    _, leaks = dbq(
        "SELECT count(*) FROM (SELECT to_jsonb(t)::text AS row FROM generations t"
        " UNION ALL SELECT to_jsonb(f)::text FROM pii_findings f) x"
        " WHERE row ILIKE '%jane.doe%' OR row LIKE '%4111%'"
    )
    assert leaks == [(0,)]


def test_pseudonyms_differ_between_projects(lake) -> None:
    a = lake.project("a").log(prompt=EMAIL, output="x").input_text
    b = lake.project("b").log(prompt=EMAIL, output="x").input_text
    assert a.startswith("<EMAIL_") and b.startswith("<EMAIL_") and a != b


def test_chat_messages_are_anonymized_too(project) -> None:
    g = project.log(
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": f"My card is {CARD}"}],
        output="OK",
    )  # fmt: skip
    assert g.input_messages[0]["content"] == "Be brief."
    assert "<CREDIT_CARD_" in g.input_messages[1]["content"]


def test_policy_versions_operators_and_the_vault(project, dbq) -> None:
    policy = project.set_pii_policy({"EMAIL": "redact", "CREDIT_CARD": "mask"}, vault=True)
    assert (policy.version, policy.vault) == (1, True)
    with project.writer() as w:
        gid = w.log(prompt=TEXT, output="no pii here")
        plain = w.log(prompt="nothing personal", output="fine")
    assert w.stats.stored == 2
    g = project.generation(gid)
    assert g.input_text == "Reach me at <EMAIL> or charge card ****************1111, thanks" or (
        g.input_text == "Reach me at <EMAIL> or charge card **** **** **** 1111, thanks"
    )
    assert project.reveal(gid) == {"input_text": TEXT}
    with pytest.raises(promptlake.NotFoundError, match="vault holds nothing"):
        project.reveal(plain)
    _, vault = dbq("SELECT key_id, length(ciphertext) > 16 FROM vault")
    assert len(vault) == 1 and vault[0][1]
    actions = [e.action for e in project.audit_log()]
    assert "reveal" in actions and "policy" in actions
    with pytest.raises(ValidationError, match="must be one of"):
        project.set_pii_policy({"EMAIL": "shred"})
    with pytest.raises(ValidationError, match="apply_at"):
        project.set_pii_policy({"EMAIL": "redact"}, apply_at="sometimes")


def test_only_admins_reveal(project, database_url, monkeypatch) -> None:
    project.set_pii_policy({"EMAIL": "redact"}, vault=True)
    g = project.log(prompt=TEXT, output="x")
    project.grant("ana", "analyst")
    monkeypatch.setenv("PROMPTLAKE_DATABASE_URL", database_url)
    with promptlake.connect(principal="ana") as lake:
        proj = lake.project(project.name, create=False)
        with pytest.raises(PermissionDeniedError, match="analyst"):
            proj.reveal(g.id)
        with pytest.raises(PermissionDeniedError):
            proj.set_pii_policy({"EMAIL": "keep"})


def test_export_only_policy_stores_text_and_retro_anonymization_resumes(project, dbq) -> None:
    project.set_pii_policy(apply_at="export")
    with project.writer() as w:
        for i in range(25):
            w.log(prompt=f"user{i}@example.com asked", output=f"call +44 20 7946 09{i:02d}")
    _, raw = dbq("SELECT count(*) FROM generations WHERE input_text LIKE '%@example.com%'")
    assert raw == [(25,)]

    project.set_pii_policy({"EMAIL": "redact", "PHONE": "redact"})

    class Interrupt(Exception):
        pass

    def stop_after_first_batch(done: int, total: int) -> None:
        assert total == 25
        raise Interrupt

    with pytest.raises(Interrupt):
        project.anonymize(batch_size=10, progress=stop_after_first_batch)
    _, half = dbq("SELECT count(*) FROM generations WHERE input_text LIKE '<EMAIL>%'")
    assert half == [(10,)]  # the first batch committed
    report = project.anonymize(batch_size=10)
    assert (report.rows, report.changed, report.findings) == (15, 15, 30)
    _, done = dbq(
        "SELECT count(*) FILTER (WHERE input_text = '<EMAIL> asked' AND output = 'call <PHONE>'),"
        " count(DISTINCT content_hash), min(pii_policy_version) FROM generations"
    )
    assert done == [(25, 1, 2)]  # hashes are of the anonymized text: now all the same
    assert project.anonymize().rows == 0  # nothing left: a second run changes nothing


def _erasure_csv(path: Path) -> Path:
    path.write_text(
        "end_user_id,prompt,output\n"
        "u-1,first question of u-1,answer\n"
        "u-2,question of u-2,answer\n"
        "u-1,second question of u-1,answer\n"
    )
    return path


def test_erasure_removes_everything_and_replays_stay_erased(project, dbq, tmp_path) -> None:
    path = _erasure_csv(tmp_path / "chats.csv")
    assert project.import_file(path, "csv").stored == 3
    _, (row,) = dbq("SELECT id FROM generations WHERE input_text = 'first question of u-1'")
    gid = row[0]
    project.score(gid, "ok", True)
    with project.session(end_user_id="u-2") as other:
        other.log(prompt="follow-up", output="x", parent=gid)  # another person's child

    report = project.erase("u-1")
    assert (report.sessions, report.generations, report.scores) == (1, 2, 1)
    _, left = dbq(
        "SELECT (SELECT count(*) FROM sessions WHERE end_user_id = 'u-1')"
        " + (SELECT count(*) FROM generations WHERE input_text LIKE '%u-1%')"
        " + (SELECT count(*) FROM scores WHERE generation_id = :g)"
        " + (SELECT count(*) FROM generations WHERE parent_id = :g)",
        {"g": gid},
    )
    assert left == [(0,)]
    _, raw_id = dbq(
        "SELECT count(*) FROM (SELECT to_jsonb(t)::text AS r FROM audit_log t UNION ALL"
        " SELECT to_jsonb(e)::text FROM erasure_tombstones e) x WHERE r LIKE '%u-1%'"
    )
    assert raw_id == [(0,)]  # the tombstone is a keyed hash, not the id

    replay = project.import_file(path, "csv")
    assert replay.stored == 0 and len(replay.rejected) == 2
    assert all("erased" in reason for _, reason in replay.rejected)
    _, after = dbq("SELECT count(*) FROM generations WHERE input_text LIKE '%u-1%'")
    assert after == [(0,)]
    with pytest.raises(ValidationError, match="erased"):
        project.session(end_user_id="u-1")
    assert any(e.action == "erase" for e in project.audit_log())


def test_key_file_is_private_and_env_key_is_checked(lake, monkeypatch) -> None:
    lake.project("k").log(prompt=EMAIL, output="x")  # pseudonymizing creates the key
    path = Path(os.environ["PROMPTLAKE_HOME"]) / "vault.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) == 32
    monkeypatch.setenv("PROMPTLAKE_VAULT_KEY", "c2hvcnQ=")
    from promptlake.privacy.keys import master_key

    with pytest.raises(promptlake.ConfigurationError, match="32 bytes"):
        master_key(lake.settings)


def _journal_for(project, end_user: str, other: str) -> tuple[Path, dict]:
    """A journal file as a writer leaves it in an outage: two people's sessions, turns and
    a score each (written with the journal's own function)."""
    import datetime as dt

    from promptlake.ids import uuid7
    from promptlake.ingest import journal
    from promptlake.privacy import keys

    sessions, rows, scores, ids = [], [], [], {}
    for who in (end_user, other):
        sid = uuid7()
        sessions.append({"id": sid, "end_user_id": who, "name": None, "tags": [],
                         "metadata": {}, "started_at": dt.datetime.now(dt.UTC)})  # fmt: skip
        row = project._prepare({"session": sid, "prompt": f"secret plan of {who}",
                                "output": "ok", "seq": 0})  # fmt: skip
        rows.append((f"row of {who}", row))
        scores.append((f"score of {who}", {
            "id": uuid7(), "generation_id": row.id, "name": "q", "source": "human",
            "author": None, "comment": None, "metadata": {}, "data_type": "numeric",
            "value_numeric": 1.0, "value_text": None, "value_bool": None,
            "created_at": dt.datetime.now(dt.UTC)}))  # fmt: skip
        ids[who] = (sid, row.id)
    master = keys.master_key(project.lake.settings)
    return journal.write(project, sessions, rows, scores, master), ids


def test_erase_rewrites_local_journals_without_the_person(project, dbq) -> None:
    from promptlake.ingest.journal import replay

    path, _ = _journal_for(project, "u-9", "u-10")
    assert "u-9" in path.read_text()
    report = project.erase("u-9")
    assert (report.journal_records, report.journal_files) == (3, 1)
    text = path.read_text()
    assert "u-9" not in text and "u-10" in text and len(text.splitlines()) == 3
    result = replay(project.lake)
    assert (result.stored, result.scores, result.rejected) == (1, 1, [])
    assert not path.exists()
    _, stored = dbq("SELECT input_text FROM generations")
    assert stored == [("secret plan of u-10",)]


def test_replay_removes_records_of_people_erased_elsewhere(project, dbq, tmp_path) -> None:
    from promptlake.ingest.journal import replay

    path, ids = _journal_for(project, "u-7", "u-8")
    with project.session(end_user_id="u-7", id=ids["u-7"][0]) as s:  # stored before the outage
        s.log(prompt="earlier turn", output="x")
    aside = tmp_path / path.name
    path.rename(aside)  # the journal is on another machine while the erasure runs
    assert project.erase("u-7").journal_records == 0
    aside.rename(path)
    # a journal holding only the session's generation (its session line went in earlier)
    lines = [line for line in path.read_text().splitlines() if '"kind": "session"' not in line
             or "u-8" in line]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    result = replay(project.lake)
    assert result.erased == 2 and result.stored == 1 and result.rejected == []
    assert not path.exists()
    _, stored = dbq("SELECT input_text FROM generations")
    assert stored == [("secret plan of u-8",)]
