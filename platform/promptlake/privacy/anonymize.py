"""Apply a project's policy to everything people and models wrote: at ingest, to stored
rows, and on reveal.

At ingest (``Anonymizer``, called by every write path before hashing) every text a user
or model wrote goes through the policy (the list is :data:`COVERED`, and a test walks the
schema to keep it complete): the prompt text, the output, the error text, every string
inside each chat message (plain ``content``, list-form content parts, tool calls and
their arguments, tool results), the string values of ``metadata`` and the ``tags``; for
sessions their name, tags and metadata; for scores their comment and metadata. The
operators replace what was found; the findings (type, field, span, operator, policy
version, never the value) are kept for ``pii_findings`` (generations and score comments);
and, if the policy says so, the original generation fields are sealed for the vault.
Stored rows are brought under a (new) policy by
:func:`promptlake.privacy.reanonymize.anonymize_stored`.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..ids import stable_id
from ..ingest.records import GenerationRow
from . import keys, vault
from .detect import Detector, Finding, PatternDetector, PresidioDetector
from .operators import apply_operators
from .policy import Policy

if TYPE_CHECKING:
    from ..client import Project


@functools.cache
def _presidio() -> Detector:
    """Presidio takes about a second to build: once per process."""
    return PresidioDetector()


def _detectors(policy: Policy) -> list[Detector]:
    out: list[Detector] = []
    for name in policy.detectors:
        if name == "pattern":
            wanted = set(policy.operators) & PatternDetector().entity_types
            if "*" in policy.operators:
                wanted = set(PatternDetector().entity_types)
            if wanted:
                out.append(PatternDetector(wanted))
        elif name == "presidio":
            out.append(_presidio())
        elif name == "ner":
            out.append(_ner())
    return out


@functools.cache
def _ner() -> Detector:
    """Presidio with a spaCy model (the ``ner`` extra): person names and locations. Off
    unless a policy names the ``ner`` detector; loading the model takes seconds."""
    from .detect import ner_model

    return PresidioDetector(use_nlp=True, spacy_model=ner_model(),
                            entity_types={"PERSON", "LOCATION"})  # fmt: skip


COVERED: dict[str, str] = {
    "generations.input_text": "prompt text",
    "generations.input_messages": "every string in each message but structural keys",
    "generations.output": "model output",
    "generations.error": "error text, including @trace exception messages",
    "generations.metadata": "string values (keys kept)",
    "generations.tags": "each tag",
    "sessions.name": "session name",
    "sessions.tags": "each tag",
    "sessions.metadata": "string values (keys kept)",
    "scores.comment": "comment text",
    "scores.metadata": "string values (keys kept)",
}
"""Every column a user or model writes into, and how the policy reaches it."""

STRUCTURAL_KEYS = frozenset(
    {"role", "type", "id", "tool_call_id", "tool_use_id", "mime_type", "media_type",
     "detail", "cache_control", "format", "data"}
)  # fmt: skip
"""Keys of chat messages whose string values are protocol, not prose (``data`` holds
base64 images or audio): left as they are."""
_ROW_SKIPS = {"input_messages": STRUCTURAL_KEYS}


class Anonymizer:
    """A project's live policy, ready to apply to many rows."""

    def __init__(self, project: Project, policy: Policy, master: bytes) -> None:
        self.project = project
        self.policy = policy
        self.master = master
        self.detectors = _detectors(policy)
        self._pattern = [d for d in self.detectors if isinstance(d, PatternDetector)]
        self._models = [d for d in self.detectors if not isinstance(d, PatternDetector)]
        self.key = keys.derive(master, "pseudonym", project.id)

    def text(self, value: str, field: Any, found: list[dict[str, Any]]) -> str:
        """``value`` under the policy; ``field`` names it in the findings (a string, or the
        path :meth:`json` builds, spelled out only when something is found)."""
        findings = [f for d in self.detectors for f in d.detect(value)]
        if not findings:
            return value
        if not isinstance(field, str):
            field = _path_name(field)
        result = apply_operators(value, findings, self.policy.operators, self.key, default="keep")
        for applied in result.applied:
            found.append(
                {"field": field, "entity_type": applied.entity_type, "start": applied.start,
                 "end": applied.end, "operator": applied.operator, "detector": applied.detector,
                 "score": applied.score}
            )  # fmt: skip
        return result.text

    def fields(
        self,
        values: dict[str, Any],
        found: list[dict[str, Any]],
        skip: Mapping[str, frozenset[str]] | None = None,
    ) -> dict[str, Any]:
        """``values`` (field name -> text, list or JSON object) with every string in them
        under the policy: keys, and values under the ``skip`` keys of a field, are kept.
        A field that did not change is the very object given.

        The strings are scanned in two detector calls, short ones and long ones, each
        joined by NUL (which validated text never holds, so a value cannot run into the
        next): the fixed cost of a call is paid twice a record, not once per string.
        Findings are recorded per string, with its path spelled out
        (``input_messages[1].content[0].text``, ``metadata.customer.email``, ``tags[0]``)."""
        skips = skip or {}
        leaves: list[tuple[Any, str]] = []
        for name, value in values.items():
            if value is not None:
                _collect(value, name, skips.get(name, _NOTHING), leaves)
        if not leaves:
            return values
        texts = [text for _, text in leaves]
        per_leaf: dict[int, list[Finding]] = {}
        short = [i for i, t in enumerate(texts) if len(t) < _SHORT]
        long = [i for i, t in enumerate(texts) if len(t) >= _SHORT]
        for batch in (long, short):
            if batch:
                self._detect_batch(texts, batch, per_leaf)
        if not any(per_leaf.values()):
            return values
        new_texts = list(texts)
        for i, leaf_findings in per_leaf.items():
            if not leaf_findings:
                continue
            path = leaves[i][0]
            field = path if isinstance(path, str) else _path_name(path)
            result = apply_operators(
                texts[i], leaf_findings, self.policy.operators, self.key, default="keep"
            )
            for applied in result.applied:
                found.append(
                    {"field": field, "entity_type": applied.entity_type, "start": applied.start,
                     "end": applied.end, "operator": applied.operator,
                     "detector": applied.detector, "score": applied.score}
                )  # fmt: skip
            if result.text != texts[i]:
                new_texts[i] = result.text
        replaced = iter(new_texts)
        return {
            name: value if value is None else _rebuild(value, skips.get(name, _NOTHING), replaced)
            for name, value in values.items()
        }

    def _detect_batch(
        self, texts: list[str], batch: list[int], per_leaf: dict[int, list[Finding]]
    ) -> None:
        """Findings of the strings ``texts[i]`` for ``i`` in ``batch``, detected in one
        text (joined by NUL), into ``per_leaf[i]`` with offsets into each string."""
        parts = [texts[i] for i in batch]
        joined = parts[0] if len(parts) == 1 else _SEP.join(parts)
        findings = [f for d in self._pattern for f in d.detect(joined)]
        for d in self._models:  # models read context: each string alone
            for i in batch:
                per_leaf.setdefault(i, []).extend(d.detect(texts[i]))
        if not findings:
            return
        starts = list(itertools.accumulate((len(t) + 1 for t in parts[:-1]), initial=0))
        for f in findings:
            j = bisect.bisect_right(starts, f.start) - 1
            base = starts[j]
            end = min(f.end, base + len(parts[j]))  # a match cannot run past its string
            if f.start < end:
                per_leaf.setdefault(batch[j], []).append(
                    Finding(f.entity_type, f.start - base, end - base, f.score, f.detector)
                )

    def json(
        self,
        value: Any,
        field: str,
        found: list[dict[str, Any]],
        skip: frozenset[str] = frozenset(),
    ) -> Any:
        """``value`` with every string in it anonymized (see :meth:`fields`)."""
        return self.fields({field: value}, found, {field: skip})[field]

    def tags(self, tags: list[str], field: str, found: list[dict[str, Any]]) -> list[str]:
        return self.fields({field: tags}, found)[field]

    def __call__(self, row: GenerationRow) -> None:
        """Anonymize ``row`` in place (every text field), recording findings and originals."""
        found: list[dict[str, Any]] = []
        originals: dict[str, Any] = {}
        given = {
            "input_text": row.input_text or None,
            "output": row.output or None,
            "error": row.error or None,
            "input_messages": row.input_messages or None,
            "metadata": row.metadata or None,
            "tags": row.tags or None,
        }
        done = self.fields(given, found, _ROW_SKIPS)
        if done is not given:
            for name, value in done.items():
                if value is not given[name]:
                    originals[name] = given[name]
                    setattr(row, name, value)
        row.pii_policy_version = self.policy.version
        row.pii_findings = found
        row.vault_originals = originals if (self.policy.vault and originals) else None

    def session(self, values: dict[str, Any]) -> dict[str, Any]:
        """A session's column values (``name``, ``tags``, ``metadata``) under the policy.
        Sessions have no findings rows (``pii_findings`` belong to generations)."""
        found: list[dict[str, Any]] = []
        given = {k: values.get(k) or None for k in ("name", "tags", "metadata")}
        done = self.fields(given, found)
        out = dict(values)
        out.update({k: v for k, v in done.items() if v is not given[k]})
        return out

    def score(self, values: dict[str, Any]) -> dict[str, Any]:
        """A score's column values with ``comment`` and ``metadata`` under the policy; the
        findings go with them (``pii_findings``, recorded against the scored generation,
        field ``scores[<id>].comment``) and are inserted by ``insert_scores``."""
        found: list[dict[str, Any]] = []
        where = f"scores[{values['id']}]"
        given = {f"{where}.comment": values.get("comment") or None,
                 f"{where}.metadata": values.get("metadata") or None}  # fmt: skip
        done = self.fields(given, found)
        out = dict(values)
        for name, column in ((f"{where}.comment", "comment"), (f"{where}.metadata", "metadata")):
            if done[name] is not given[name]:
                out[column] = done[name]
        if found:
            gid = values["generation_id"]
            out["pii_findings"] = [
                (self.project.id, stable_id(gid, f["field"], f["start"], f["entity_type"]), gid,
                 f["field"], f["entity_type"], f["start"], f["end"], f["operator"],
                 self.policy.version, f["detector"], f["score"])
                for f in found
            ]  # fmt: skip
        return out


_SEP = "\x00"
_SHORT = 200
"""Strings shorter than this (metadata values, tags, names) are scanned in one detector
call, longer ones (prompts, messages, outputs) in another: so that an id in the metadata
does not make the detector look for keys all over the prompts (the 15-character run test
of privacy/vendor_keys.py)."""
_NOTHING: frozenset[str] = frozenset()


def _collect(value: Any, path: Any, skip: frozenset[str], leaves: list[tuple[Any, str]]) -> None:
    """The non-empty strings in ``value``, with their paths, in a fixed order (string
    children are taken in the loop, without a call each: most leaves are strings)."""
    kind = type(value)
    if kind is str:
        if value:
            leaves.append((path, value))
        return
    if kind is dict:
        items: Any = value.items()
    elif kind is list or kind is tuple:
        items = enumerate(value)
    else:
        return
    for k, v in items:
        child = type(v)
        if child is str:
            if v and k not in skip:
                leaves.append(((path, k), v))
        elif (child is dict or child is list or child is tuple) and k not in skip:
            _collect(v, (path, k), skip, leaves)


def _rebuild(value: Any, skip: frozenset[str], replaced: Iterator[str]) -> Any:
    """``value`` with its strings taken from ``replaced`` (in :func:`_collect`'s order);
    the same object where nothing in it changed."""
    kind = type(value)
    if kind is str:
        return next(replaced) if value else value
    if kind is dict:
        items: Any = value.items()
    elif kind is list or kind is tuple:
        items = enumerate(value)
    else:
        return value
    out: Any = None
    for k, v in items:
        child = type(v)
        if child is str:
            if not v or k in skip:
                continue
            new = next(replaced)
        elif (child is dict or child is list or child is tuple) and k not in skip:
            new = _rebuild(v, skip, replaced)
        else:
            continue
        if new is not v:
            if out is None:
                out = dict(value) if kind is dict else list(value)
            out[k] = new
    return value if out is None else out


def _path_name(path: Any) -> str:
    """``(("input_messages", 1), "content")`` -> ``input_messages[1].content``."""
    parts: list[str] = []
    while isinstance(path, tuple):
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return path + "".join(reversed(parts))


def anonymize_session(project: Project, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` of a session under the project's ingest policy (unchanged without one)."""
    anonymizer = project._anonymizer()
    return anonymizer.session(values) if isinstance(anonymizer, Anonymizer) else values


def anonymize_score(project: Project, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` of a score under the project's ingest policy (unchanged without one)."""
    anonymizer = project._anonymizer()
    return anonymizer.score(values) if isinstance(anonymizer, Anonymizer) else values


def ingest_anonymizer(project: Project) -> Callable[[GenerationRow], None] | None:
    """What the write paths call on every row, or None when the policy is export-only."""
    from . import policy as policies

    live = policies.current(project)
    if not live.at_ingest:
        return None
    return Anonymizer(project, live, project.lake.master_key())


def finding_rows(project_id: uuid.UUID, row: GenerationRow) -> list[tuple]:
    """``pii_findings`` rows of an anonymized generation; ids derived, so retries are no-ops."""
    return [
        (project_id, stable_id(row.id, f["field"], f["start"], f["entity_type"]), row.id,
         f["field"], f["entity_type"], f["start"], f["end"], f["operator"],
         row.pii_policy_version, f["detector"], f["score"])
        for f in row.pii_findings
    ]  # fmt: skip


def vault_row(project_id: uuid.UUID, row: GenerationRow, master: bytes) -> tuple | None:
    if not row.vault_originals:
        return None
    key_id, nonce, sealed = vault.seal(master, project_id, row.id, row.vault_originals)
    return (project_id, row.id, key_id, nonce, sealed)


INSERT_FINDINGS = (
    "INSERT INTO pii_findings (project_id, id, generation_id, field, entity_type, start_offset,"
    " end_offset, operator, policy_version, detector, score)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
INSERT_VAULT = (
    "INSERT INTO vault (project_id, generation_id, key_id, nonce, ciphertext)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


def store_side_rows(conn: Any, project: Project, rows: list[GenerationRow]) -> None:
    """Findings and vault entries of rows just written (same transaction)."""
    rows = [row for row in rows if row.pii_findings]
    findings = [f for row in rows for f in finding_rows(project.id, row)]
    if findings:
        with conn.cursor() as cur:
            cur.executemany(INSERT_FINDINGS, findings)
    sealed = [(project.id, row.id, *row.vault_sealed) for row in rows if row.vault_sealed]
    to_seal = [row for row in rows if row.vault_originals and not row.vault_sealed]
    if to_seal:
        master = project.lake.master_key()
        sealed += [vault_row(project.id, row, master) for row in to_seal]
    if sealed:
        with conn.cursor() as cur:
            cur.executemany(INSERT_VAULT, sealed)


def reveal(project: Project, generation_id: uuid.UUID) -> dict[str, Any]:
    """The original fields of a generation from the vault (admins only; audited)."""
    from ..access import require_member, write_audit
    from ..errors import NotFoundError

    require_member(project, ("admin",))
    with project.lake._transaction(project) as conn:
        row = conn.execute(
            "SELECT key_id, nonce, ciphertext FROM vault WHERE project_id = %s"
            " AND generation_id = %s",
            (project.id, generation_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"the vault holds nothing for {generation_id} in {project.name!r}")
        write_audit(conn, project, "reveal", str(generation_id), {})
    master = project.lake.master_key()
    return vault.open_sealed(master, project.id, generation_id, *row)


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def text_anonymizer(project: Project, field: str) -> Callable[[str], str]:
    """A function applying the project's live PII operators to one text, whatever the
    policy's ``apply_at``: for texts that leave the rows the policy rewrites (MLflow
    params, an experiment task's error), recorded as ``field`` in no findings row."""
    from . import policy as policies

    anonymizer = Anonymizer(project, policies.current(project), project.lake.master_key())

    def clean(value: str) -> str:
        return anonymizer.text(value, field, [])

    return clean
