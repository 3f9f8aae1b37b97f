"""Data for the UI tests: two projects with keys of every role, a branched chat session
with attachments, PII, retrievals, scores, prompt versions, a run and dataset versions.
Project B's rows carry the word ``zebrafish``; nothing of B may ever show in A's pages."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import promptlake
from conftest import TEMPLATE, create_database, drop_database
from promptlake.datasets import registry
from promptlake.datasets.params import parse

# a 2x2 PNG and a 0.01 s silent WAV: real files a browser can decode
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)
WAV = (
    b"RIFF"
    + (36 + 160).to_bytes(4, "little")
    + b"WAVEfmt "
    + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little")
    + (1).to_bytes(2, "little")
    + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little")
    + (2).to_bytes(2, "little")
    + (16).to_bytes(2, "little")
    + b"data"
    + (160).to_bytes(4, "little")
    + bytes(160)
)


@dataclass
class Fixture:
    keys: dict[str, str] = field(default_factory=dict)  # role (a) and "other" (b's admin)
    session_id: object = None
    turns: list = field(default_factory=list)
    other_session_id: object = None
    other_generation_id: object = None
    other_attachment_id: object = None
    image_id: object = None
    file_id: object = None
    run_id: object = None
    other_run_id: object = None
    versions: list = field(default_factory=list)
    bulk_ids: list = field(default_factory=list)


def fill(lake, bulk: int = 60) -> Fixture:
    out = Fixture()
    a, b = lake.project("ui-a"), lake.project("ui-b")
    for role in ("admin", "analyst", "viewer", "writer"):
        out.keys[role] = a.keys.create(role, name=f"ui {role}").secret
    out.keys["other"] = b.keys.create("admin", name="ui other").secret

    v1 = a.prompts.register("support", "You are helpful.\nAnswer the question: {q}")
    v2 = a.prompts.register("support", "You are helpful and brief.\nAnswer the question: {q}")
    a.corpus.add(
        "Refunds are possible within 30 days of purchase with a receipt.", title="refund policy"
    )
    chunks = a.retrieve("refund within 30 days", 2)
    now = dt.datetime.now(dt.UTC)
    with a.run("eval-nightly", tracking=False, params={"temperature": 0.2}) as run:
        with a.session(end_user_id="u-alice", name="refund chat", tags=["support"]) as s:
            hi = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
            g1 = s.log(
                messages=hi,
                output="Hello! How can I help?",
                model="gpt-4o",
                params={"temperature": 0.2},
                prompt_tokens=12,
                completion_tokens=6,
                cost_usd=0.0002,
                latency_ms=420.0,
                prompt_version=v1,
                created_at=now - dt.timedelta(minutes=5),
            )
            ask = [
                *hi,
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Can I get a refund? Mail me at bob@example.com"},
            ]
            g2 = s.log(
                messages=ask,
                output="Yes, refunds are possible within 30 days.",
                model="gpt-4o",
                parent=g1,
                prompt_tokens=40,
                completion_tokens=12,
                cost_usd=0.0006,
                latency_ms=880.0,
                prompt_version=v2,
                retrieved=chunks,
                tags=["refund"],
                created_at=now - dt.timedelta(minutes=4),
                attachments=[
                    {"kind": "image", "mime_type": "image/png", "data": PNG},
                    {"kind": "audio", "mime_type": "audio/wav", "data": WAV},
                    {"kind": "file", "mime_type": "application/pdf", "data": b"%PDF-1.4"},
                ],
            )
            g3 = s.log(
                messages=ask,
                output="Refunds: 30 days, receipt needed (retry). <script>alert(1)</script>",
                model="claude-3",
                parent=g1,
                prompt_tokens=40,
                completion_tokens=10,
                latency_ms=1300.0,
                origin="synthetic",
                generator="paraphraser-v1",
                lineage={"source": str(g2.id)},
                created_at=now - dt.timedelta(minutes=3),
            )
            g4 = s.log(
                messages=[
                    *ask,
                    {"role": "assistant", "content": g2.output},
                    {"role": "user", "content": "Thanks"},
                ],
                output=None,
                status="error",
                error="timeout after 30 s",
                model="gpt-4o",
                parent=g2,
                latency_ms=30000.0,
                created_at=now - dt.timedelta(minutes=2),
            )
        out.run_id = run.id
    out.session_id, out.turns = s.id, [g1, g2, g3, g4]
    a.score(g2, "helpfulness", 0.9, source="model", author="judge-1", comment="grounded")
    for i in range(bulk):  # two turns per session: 30 more sessions, 60 generations
        if i % 2 == 0:
            bulk_session = a.session(end_user_id=f"u-{i % 4}", name=f"bulk {i // 2:02d}")
        g = bulk_session.log(
            prompt=f"bulk question {i} about shipping order {i % 9}",
            output=f"bulk answer {i}: your order ships in {i % 5 + 1} days",
            model="gpt-4o-mini" if i % 2 else "gpt-4o",
            tags=["bulk"],
            origin="synthetic" if i % 3 == 0 else "real",
            generator="gen-1" if i % 3 == 0 else None,
            created_at=now - dt.timedelta(hours=i),
        )
        out.bulk_ids.append(g.id)
    a.embed()
    with lake._transaction(a) as conn:
        out.image_id, out.file_id = (
            conn.execute(
                "SELECT id FROM attachments WHERE project_id = %s AND mime_type = %s",
                (a.id, mime),
            ).fetchone()[0]
            for mime in ("image/png", "application/pdf")
        )
    params = parse(
        {"dataset": {"name": "support-set", "mlflow": False}, "export": {"project": "ui-a"}}
    )
    ids = [str(i) for i in out.bulk_ids]
    out.versions = [
        registry.record(
            a,
            params,
            {"train": ids[:40], "test": ids[40:50]},
            md5="aaaa1111.dir",
            path="data/split",
            tracking=False,
        )[0],
        registry.record(
            a,
            params,
            {"train": ids[:45], "test": ids[45:60]},
            md5="bbbb2222.dir",
            path="data/split",
            tracking=False,
        )[0],
    ]

    with (
        b.run("zebrafish-run", tracking=False) as other_run,
        b.session(end_user_id="u-zebrafish", name="zebrafish chat") as other,
    ):
        og = other.log(
            prompt="zebrafish secret question",
            output="zebrafish secret answer",
            model="gpt-4o",
            attachments=[{"kind": "image", "mime_type": "image/png", "data": PNG}],
        )
    b.embed()
    out.other_session_id, out.other_generation_id, out.other_run_id = other.id, og.id, other_run.id
    with lake._transaction(b) as conn:
        out.other_attachment_id = conn.execute(
            "SELECT id FROM attachments WHERE project_id = %s", (b.id,)
        ).fetchone()[0]
    return out


def ui_env(admin_url: str) -> Iterator[tuple]:
    """``(server, fixture, database url)``: a filled database of its own and a real
    uvicorn on 127.0.0.1 (module-scoped by the tests: the pages only read, and the few
    writes go to rows no other test looks at)."""
    from promptlake.server.run import ThreadedServer

    name = f"promptlake_ui_{uuid.uuid4().hex[:10]}"
    url = create_database(admin_url, name, template=TEMPLATE)
    # one master key for the module: its tests each have a home of their own, and a store
    # refuses to open with a key other than the one it was written with
    before = os.environ.get("PROMPTLAKE_VAULT_KEY")
    os.environ["PROMPTLAKE_VAULT_KEY"] = base64.b64encode(os.urandom(32)).decode()
    lake = promptlake.connect(url, principal="ui-tests")
    try:
        data = fill(lake)
        with ThreadedServer(lake) as server:
            yield server, data, url
    finally:
        lake.close()
        drop_database(admin_url, name)
        if before is None:
            os.environ.pop("PROMPTLAKE_VAULT_KEY", None)
        else:
            os.environ["PROMPTLAKE_VAULT_KEY"] = before
