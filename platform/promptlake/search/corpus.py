"""RAG corpus: documents cut into chunks, embedded, retrieved, and recorded as grounding.

Chunking strategy (``chunk_text``): split the text into paragraphs at blank lines (and, for
markdown, before every heading line, so a section never starts mid-chunk); pack whole
paragraphs greedily into chunks of at most ``max_chars`` (default 800) characters; a
paragraph longer than that is cut into windows of ``max_chars`` at the last whitespace,
overlapping by ``overlap`` (default 100) characters so no sentence is lost at a cut. Every
chunk keeps its character offsets into the document.

Formats: ``text``, ``markdown`` (one document per call or file) and ``jsonl`` (one
document per line: ``text`` or ``content``, optional ``title``, ``source``, ``metadata``).
Document and chunk ids derive from the content, so adding the same document again stores
nothing. ``retrieve`` ranks chunks by exact cosine distance (corpora are small next to the
generations table; add an HNSW index like ``promptlake embed`` does if one grows large).
``Session.log(..., retrieved=chunks)`` writes ``generation_retrievals`` (rank, score) in the
logging transaction, so SQL can join answers to the documents they were grounded in.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg.types.json import Jsonb

from ..errors import Problem, ValidationError
from .embedders import Embedder, get_embedder

if TYPE_CHECKING:
    from ..client import Project

FORMATS = ("text", "markdown", "jsonl")
_NAMESPACE = uuid.UUID("4f1c2a57-2f0e-4e55-9d39-5a0c1f3b7a10")
_HEADING = re.compile(r"(?m)^(?=#{1,6} )")


@dataclass(frozen=True)
class Chunk:
    """A retrieved (or stored) piece of a document."""

    id: uuid.UUID
    document_id: uuid.UUID
    seq: int
    text: str
    title: str | None = None
    score: float | None = None  # cosine similarity to the query
    rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _paragraphs(text: str, markdown: bool) -> list[tuple[int, int]]:
    """(start, end) of the non-blank paragraphs (and markdown sections) of ``text``."""
    bounds = [0]
    for sep in re.finditer(r"\n[ \t]*\n\s*", text):
        bounds += [sep.start(), sep.end()]
    if markdown:
        bounds += [m.start() for m in _HEADING.finditer(text)]
    bounds = sorted({*bounds, len(text)})
    out = []
    for a, b in itertools.pairwise(bounds):
        piece = text[a:b]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((a + lead, a + len(piece.rstrip())))
    return out


def chunk_text(
    text: str, *, markdown: bool = False, max_chars: int = 800, overlap: int = 100
) -> list[tuple[int, int]]:
    """(start, end) offsets of the chunks of ``text``; see the module docstring."""
    chunks: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for a, b in _paragraphs(text, markdown):
        pieces = []
        while b - a > max_chars:  # a long paragraph: overlapping windows cut at whitespace
            cut = text.rfind(" ", a + max_chars // 2, a + max_chars)
            cut = cut if cut > a else a + max_chars
            pieces.append((a, cut))
            a = max(cut - overlap, a + 1)
        pieces.append((a, b))
        for pa, pb in pieces:
            new_section = markdown and text.startswith("#", pa)
            if current and not new_section and pb - current[0] <= max_chars:
                current = (current[0], pb)
            else:
                if current:
                    chunks.append(current)
                current = (pa, pb)
    if current:
        chunks.append(current)
    return chunks


def _documents(source: Any, format: str | None, title: str | None) -> list[dict[str, Any]]:
    path = Path(source) if isinstance(source, Path) else None
    if path is None and isinstance(source, str) and "\n" not in source and len(source) < 4096:
        candidate = Path(source)
        path = candidate if candidate.is_file() else None
    if path is not None:
        fmt = format or {".md": "markdown", ".jsonl": "jsonl"}.get(path.suffix.lower(), "text")
        text, name = path.read_text(encoding="utf-8"), str(path)
    elif isinstance(source, str):
        fmt, text, name = format or "text", source, None
    else:
        raise ValidationError([Problem("source", "must be text or a path to a file")])
    if fmt not in FORMATS:
        raise ValidationError([Problem("format", f"must be one of {', '.join(FORMATS)}")])
    if fmt != "jsonl":
        return [{"content": text, "format": fmt, "title": title, "source": name, "metadata": {}}]
    docs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            content = obj.get("text") or obj.get("content")
        except (json.JSONDecodeError, AttributeError):
            obj, content = {}, None
        if not isinstance(content, str):
            raise ValidationError([Problem(f"line {n}", "needs a 'text' or 'content' string")])
        docs.append(
            {
                "content": content,
                "format": "jsonl",
                "title": obj.get("title", title),
                "source": obj.get("source", name),
                "metadata": obj.get("metadata") or {},
            }
        )
    return docs


class Corpus:
    """The documents of one project: ``add`` and ``retrieve``."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def add(
        self,
        source: str | Path,
        *,
        format: str | None = None,
        title: str | None = None,
        embedder: str | Embedder | None = None,
        max_chars: int = 800,
        overlap: int = 100,
    ) -> list[uuid.UUID]:
        """Store a document (text, a file, or JSONL lines), chunk and embed it; returns the
        document ids (adding a document again changes nothing)."""
        from pgvector.psycopg import register_vector

        emb = get_embedder(embedder)
        project = self.project
        ids = []
        with project.lake._transaction(project) as conn:
            register_vector(conn)
            for doc in _documents(source, format, title):
                if "\x00" in doc["content"] or not doc["content"].strip():
                    raise ValidationError([Problem("content", "must be non-empty text, no NUL")])
                digest = hashlib.sha256(doc["content"].encode()).digest()
                doc_id = uuid.uuid5(_NAMESPACE, digest.hex())
                ids.append(doc_id)
                cur = conn.execute(
                    "INSERT INTO documents (project_id, id, source, title, format, content,"
                    " content_hash, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (project.id, doc_id, doc["source"], doc["title"], doc["format"],
                     doc["content"], digest, Jsonb(doc["metadata"])),
                )  # fmt: skip
                if not cur.rowcount:
                    continue
                text = doc["content"]
                spans = chunk_text(text, markdown=doc["format"] == "markdown",
                                   max_chars=max_chars, overlap=overlap)  # fmt: skip
                vectors = emb.embed([text[a:b] for a, b in spans])
                with conn.cursor() as c:
                    c.executemany(
                        "INSERT INTO document_chunks (project_id, id, document_id, seq, text,"
                        " start_offset, end_offset, embedder, vector)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [(project.id, uuid.uuid5(doc_id, str(i)), doc_id, i, text[a:b], a, b,
                          emb.name, np.asarray(v, dtype=np.float32))
                         for i, ((a, b), v) in enumerate(zip(spans, vectors, strict=True))],
                    )  # fmt: skip
        return ids

    def retrieve(
        self, query: str, k: int = 5, *, embedder: str | Embedder | None = None
    ) -> list[Chunk]:
        """The ``k`` chunks closest to ``query`` (cosine), best first, with score and rank."""
        from pgvector.psycopg import register_vector

        if not 1 <= k <= 1000:
            raise ValidationError([Problem("k", "must be between 1 and 1000")])
        emb = get_embedder(embedder)
        vec = np.asarray(emb.embed([query])[0], dtype=np.float32)
        with self.project.lake._transaction(self.project) as conn:
            register_vector(conn)
            rows = conn.execute(
                "SELECT c.id, c.document_id, c.seq, c.text, d.title,"
                " 1 - (c.vector <=> %s) AS similarity FROM document_chunks c"
                " JOIN documents d ON d.project_id = c.project_id AND d.id = c.document_id"
                " WHERE c.project_id = %s AND c.embedder = %s"
                " ORDER BY c.vector <=> %s, c.id LIMIT %s",
                (vec, self.project.id, emb.name, vec, k),
            ).fetchall()
        return [Chunk(r[0], r[1], r[2], r[3], r[4], float(r[5]), i + 1) for i, r in enumerate(rows)]


def retrieval_rows(
    project_id: uuid.UUID, generation_id: uuid.UUID, retrieved: Iterable[Any]
) -> list[tuple]:
    """Rows of ``generation_retrievals`` for ``retrieved``: Chunks, chunk ids, or
    (chunk id, score) pairs, in the order given (rank 1 first)."""
    rows, seen = [], set()
    for position, item in enumerate(retrieved, 1):
        score = None
        if isinstance(item, Chunk):
            cid, score = item.id, item.score
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
            cid, score = uuid.UUID(str(item[0])), float(item[1])
        elif isinstance(item, Mapping):
            cid, score = uuid.UUID(str(item["id"])), item.get("score")
        else:
            cid = uuid.UUID(str(item))
        if cid not in seen:
            seen.add(cid)
            rows.append((project_id, generation_id, cid, position, score))
    return rows


def insert_retrievals(conn: Any, rows: list[tuple]) -> None:
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO generation_retrievals (project_id, generation_id, chunk_id, rank,"
                " score) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )
