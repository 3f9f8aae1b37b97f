"""The file stages between export and stats: dedup, anonymize, split.

Each reads the previous stage's Parquet and writes its own, so DVC can cache and rerun
them one by one. All three are deterministic functions of their input file and
parameters (and, for anonymize, the project's pseudonym key), so unchanged inputs give
byte-identical outputs.

- **dedup** drops exact duplicates (same ``content_hash``) and, with a threshold,
  near-duplicates (word 5-gram Jaccard, the same MinHash LSH + exact verification as
  ``promptlake dedup``), keeping the first row (smallest id) of each group;
- **anonymize** applies PII operators (the project's live policy unless the params name
  operators) to the prompt text, each chat message's text and the output;
- **split** assigns train / validation / test from a hash of the seed and the row's
  ``content_hash``, so a row's split never depends on which other rows are in the
  dataset: it never moves between versions, and copies of one text never straddle
  splits. Synthetic rows are kept out of test unless ``synthetic_in_test`` (they go to
  train), and ``max_synthetic_share`` caps their share of each split by dropping the
  synthetic rows of highest hash first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..db.models import DATASET_SPLITS
from .params import DedupParams, SplitParams

if TYPE_CHECKING:
    import pyarrow as pa

    from ..client import Project


def _texts(table: pa.Table, which: str) -> list[str]:
    """The compared text of each row, as the database's dedup fields assemble it."""
    prompts = table.column("input_text").to_pylist()
    messages = table.column("input_messages").to_pylist()
    outputs = table.column("output").to_pylist()
    out = []
    for prompt, chat, output in zip(prompts, messages, outputs, strict=True):
        parts = []
        if which in ("content", "input"):
            parts.append(prompt or "")
            for m in json.loads(chat) if chat else []:
                content = m.get("content")
                parts.append(content if isinstance(content, str) else json.dumps(content))
        if which in ("content", "output"):
            parts.append(output or "")
        out.append("\n".join(p for p in parts if p))
    return out


@dataclass
class DedupResult:
    rows_in: int
    exact_removed: int
    near_removed: int
    kept: np.ndarray = field(repr=False)  # positions of the rows kept

    def to_dict(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "exact_removed": self.exact_removed,
            "near_removed": self.near_removed,
            "rows_out": len(self.kept),
        }


def dedup_table(table: pa.Table, params: DedupParams) -> tuple[pa.Table, DedupResult]:
    """``table`` (sorted by id) without its duplicates; the first of each group stays."""
    from ..dedup.clusters import UnionFind
    from ..dedup.minhash import Signer, band_keys, candidate_pairs, lsh_params
    from ..dedup.shingles import Shingler, jaccard

    n = table.num_rows
    keep = np.ones(n, dtype=bool)
    if params.exact and n:
        hashes = table.column("content_hash").to_pylist()
        seen: set[str] = set()
        for i, h in enumerate(hashes):
            if h in seen:
                keep[i] = False
            seen.add(h)
    exact_removed = int(n - keep.sum())
    near_removed = 0
    if params.near_threshold is not None and keep.sum() > 1:
        positions = np.flatnonzero(keep)
        sets = Shingler().shingle(_texts(table.take(positions), params.field))
        signer = Signer()
        bands, rows = lsh_params(params.near_threshold, signer.num_perm)
        keys = band_keys(signer.sign(sets), bands, rows)
        eligible = sets.sizes() > 0
        pairs, _ = candidate_pairs(keys, eligible, eligible)
        groups = UnionFind(len(positions))  # the smallest position (id) leads its group
        for a, b in pairs:
            if jaccard(sets.get(int(a)), sets.get(int(b))) >= params.near_threshold:
                groups.union(int(a), int(b))
        roots = np.array([groups.find(i) for i in range(len(positions))])
        drop = positions[roots != np.arange(len(positions))]
        keep[drop] = False
        near_removed = len(drop)
    kept = np.flatnonzero(keep)
    return table.take(kept), DedupResult(n, exact_removed, near_removed, kept)


@dataclass
class AnonymizeResult:
    rows: int
    rows_changed: int
    findings: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "rows_changed": self.rows_changed,
                "findings": dict(sorted(self.findings.items()))}  # fmt: skip


def anonymize_table(
    project: Project,
    table: pa.Table,
    operators: dict[str, str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pa.Table, AnonymizeResult]:
    """PII in the text columns replaced by the operators of ``operators`` (or of the
    project's live policy); pseudonyms use the project's key, so they match the ones
    made at ingest and stay stable across versions."""
    import pyarrow as pa

    from ..privacy import policy as policies
    from ..privacy.anonymize import Anonymizer

    live = policies.current(project)
    policy = live if not operators else policies.Policy(version=live.version, operators=operators)
    anonymizer = Anonymizer(project, policy, project.lake.master_key())
    counts: dict[str, int] = {}
    changed_rows = 0
    columns = {name: table.column(name).to_pylist() for name in ("input_text", "output")}
    messages = table.column("input_messages").to_pylist()
    n = table.num_rows
    for i in range(n):
        found: list[dict[str, Any]] = []
        for name, values in columns.items():
            if values[i]:
                values[i] = anonymizer.text(values[i], name, found)
        if messages[i]:
            chat = json.loads(messages[i])
            touched = False
            for j, message in enumerate(chat):
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, str) and content:
                    new = anonymizer.text(content, f"input_messages[{j}]", found)
                    if new != content:
                        message["content"] = new
                        touched = True
            if touched:
                # jsonb's text form: the database would print it the same way
                messages[i] = json.dumps(chat, ensure_ascii=False, separators=(", ", ": "))
        if found:
            changed_rows += 1
            for f in found:
                counts[f["entity_type"]] = counts.get(f["entity_type"], 0) + 1
        if progress and (i % 1000 == 0 or i == n - 1):
            progress(i + 1, n)
    schema = table.schema
    for name, values in [*columns.items(), ("input_messages", messages)]:
        index = schema.get_field_index(name)
        table = table.set_column(index, name, pa.array(values, type=pa.string()))
    return table, AnonymizeResult(n, changed_rows, counts)


def split_fractions(content_hashes: list[str], seed: str) -> np.ndarray:
    """A number in [0, 1) per row from sha256(seed, content hash): stable and uniform."""
    prefix = seed.encode() + b"\x00"
    return np.array(
        [
            int.from_bytes(hashlib.sha256(prefix + h.encode()).digest()[:8], "big") / 2.0**64
            for h in content_hashes
        ],
        dtype=np.float64,
    )


@dataclass
class SplitResult:
    counts: dict[str, int]
    synthetic: dict[str, int]
    dropped_synthetic: int

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.counts, "synthetic": self.synthetic,
                "dropped_synthetic": self.dropped_synthetic}  # fmt: skip


def split_table(table: pa.Table, params: SplitParams) -> tuple[dict[str, pa.Table], SplitResult]:
    """``table`` cut into train / validation / test (see the module docstring)."""
    fraction = split_fractions(table.column("content_hash").to_pylist(), params.seed)
    synthetic = np.array([o == "synthetic" for o in table.column("origin").to_pylist()], bool)
    bounds = np.array([params.train, params.train + params.validation])
    which = np.searchsorted(bounds, fraction, side="right")  # 0 train, 1 validation, 2 test
    if not params.synthetic_in_test:
        which[(which == 2) & synthetic] = 0
    keep = np.ones(table.num_rows, dtype=bool)
    for s in range(len(DATASET_SPLITS)):
        members = which == s
        real = int((members & ~synthetic).sum())
        synth = np.flatnonzero(members & synthetic)
        cap = params.max_synthetic_share
        # the largest number of synthetic rows with synth / (real + synth) <= cap
        allowed = len(synth) if cap >= 1 else int(np.floor(cap * real / (1 - cap) + 1e-9))
        if len(synth) > allowed:
            order = synth[np.argsort(fraction[synth], kind="stable")]
            keep[order[allowed:]] = False
    out: dict[str, pa.Table] = {}
    counts: dict[str, int] = {}
    synthetic_counts: dict[str, int] = {}
    for s, name in enumerate(DATASET_SPLITS):
        rows = np.flatnonzero((which == s) & keep)
        out[name] = table.take(rows)
        counts[name] = len(rows)
        synthetic_counts[name] = int(synthetic[rows].sum())
    return out, SplitResult(counts, synthetic_counts, int((~keep).sum()))
