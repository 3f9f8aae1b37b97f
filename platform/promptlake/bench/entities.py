"""``promptlake bench entities``: extraction speed, precision/recall, graph query latency.

1. Extraction generations/s of each extractor on ~2 KB texts (several labelled-sample
   documents joined), in process (no database): the built-in one with and without the
   PII guard, and the spaCy extra when installed.
2. Precision and recall per kind on the labelled sample (``entity_sample.py``), on the
   development templates and the held-out ones.
3. A project of ``rows`` generations (~2 KB outputs from the same templates, with large
   generated filler lists so that the graph has thousands of entities), extracted end to
   end (``proj.entities.extract``: reading, extracting, writing), then the p50/p95 of
   ``neighbors`` (depth 1) and of ``path`` between entities two hops apart.
"""

from __future__ import annotations

import itertools
import random
import time
from typing import TYPE_CHECKING, Any

from ..graph.extract import BuiltinExtractor, Dictionary
from ..graph.guard import PiiGuard
from . import drop_projects
from .entity_sample import DICTIONARY, HELD_OUT, TEMPLATES, _fill, labelled_sample, score

if TYPE_CHECKING:
    from ..client import Lake

PROJECT = "bench-entities"
_FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Edsger",
    "Donald",
    "Frances",
    "Ken",
    "Dennis",
    "Margaret",
    "Radia",
    "Tim",
    "Vint",
    "Shafi",
    "Leslie",
    "John",
    "Sophie",
    "Hedy",
    "Katherine",
    "Annie",
    "Dorothy",
    "Mary",
    "Jean",
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
    "Yusuf",
    "Zara",
    "Omar",
    "Leila",
    "Mateo",
    "Ines",
    "Kofi",
]
_LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Dijkstra",
    "Knuth",
    "Allen",
    "Thompson",
    "Ritchie",
    "Hamilton",
    "Perlman",
    "Berners",
    "Cerf",
    "Goldwasser",
    "Lamport",
    "Backus",
    "Wilson",
    "Lamarr",
    "Johnson",
    "Easley",
    "Vaughan",
    "Jackson",
    "Bartik",
    "Okafor",
    "Mensah",
    "Nakamura",
    "Petrova",
    "Fischer",
    "Rossi",
    "Mehta",
    "Haddad",
    "Costa",
    "Brandt",
    "Lindqvist",
    "Raman",
    "Whitfield",
    "Adeyemi",
    "Martin",
    "Zhang",
    "Obi",
    "Tanaka",
]
_WORDS = [
    "north",
    "wind",
    "blue",
    "harbor",
    "pine",
    "crest",
    "orion",
    "maple",
    "red",
    "wood",
    "silver",
    "lake",
    "iron",
    "bridge",
    "cedar",
    "stone",
    "bright",
    "path",
    "quantum",
    "leaf",
    "river",
    "rock",
    "ocean",
    "field",
    "summit",
    "delta",
    "gamma",
    "nova",
    "apex",
    "vertex",
    "lumen",
    "cobalt",
    "amber",
    "jade",
    "onyx",
    "coral",
    "falcon",
    "otter",
    "lynx",
]


def _fillers(rng: random.Random) -> dict[str, list[str]]:
    cap = [w.capitalize() for w in _WORDS]
    return {
        "person": [f"{a} {b}" for a, b in itertools.product(_FIRST, _LAST)],
        "org": [f"{a}{b.lower()} {s}" for a, b in itertools.product(cap, cap)
                for s in ("Labs", "Systems", "Bank")][:3000],
        "place": [f"{a} {s}" for a in cap for s in ("City", "Valley", "Springs")],
        "url": [f"https://{a}.{b}.io/docs/{rng.randint(1, 50)}"
                for a in _WORDS for b in _WORDS][:2000],
        "domain": [f"{a}-{b}.com" for a in _WORDS for b in _WORDS][:1500],
        "pip": [f"{a}-{b}" for a in _WORDS for b in _WORDS][:1500],
        "npm": [f"@{a}/{b}" for a in _WORDS for b in _WORDS][:1500],
        "import": [f"{a}{b}" for a in _WORDS for b in _WORDS][:1500],
        "code": [f"{a}_{b}" for a in _WORDS for b in _WORDS],
        "call": [f"{a}.{b}" for a in _WORDS for b in _WORDS][:1500],
        "camel": [f"{a}{b.capitalize()}" for a in _WORDS for b in _WORDS][:1500],
    }  # fmt: skip


def _texts(n: int, rng: random.Random, fillers: dict[str, list[str]] | None) -> list[str]:
    """``n`` texts of about 2 KB, each a few template documents joined."""
    templates = TEMPLATES + HELD_OUT
    out = []
    for _ in range(n):
        parts: list[str] = []
        size = 0
        while size < 1900:
            text, _ = _fill(rng.choice(templates), rng, fillers)
            parts.append(text)
            size += len(text) + 2
        out.append("\n\n".join(parts)[:2100])
    return out


def _rate(extract: Any, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        extract(text)
    return round(len(texts) / (time.perf_counter() - started), 1)


def _p(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def _graph_queries(lake: Lake, rows: int, queries: int, rng: random.Random) -> dict[str, Any]:
    drop_projects(lake, PROJECT)
    project = lake.project(PROJECT)
    project.entities.set_dictionary(DICTIONARY)
    fillers = _fillers(rng)
    started = time.perf_counter()
    with project.writer(batch_size=5000) as writer:
        for lo in range(0, rows, 5000):
            for text in _texts(min(5000, rows - lo), rng, fillers):
                writer.log(prompt="Summarize the thread.", output=text, model="bench-model")
    load_seconds = time.perf_counter() - started
    report = project.entities.extract(batch_size=5000)
    with lake._transaction(project) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM entities WHERE project_id = %(p)s),"
            " (SELECT count(*) FROM entity_mentions WHERE project_id = %(p)s),"
            " (SELECT count(*) FROM entity_relations WHERE project_id = %(p)s),"
            " (SELECT count(*) FROM relation_support WHERE project_id = %(p)s)",
            {"p": project.id},
        ).fetchone()
        # pairs two hops apart: a -> b -> c with c not next to a
        starts = [r[0] for r in conn.execute(
            "SELECT subject_id FROM entity_relations WHERE project_id = %s"
            " ORDER BY md5(id::text) LIMIT %s", (project.id, queries),
        )]  # fmt: skip
    graph = project.entities
    neighbor_times, path_times, lengths = [], [], []
    for eid in starts:
        t0 = time.perf_counter()
        near = graph.neighbors(eid, limit=50)
        neighbor_times.append(time.perf_counter() - t0)
        if not near:
            continue
        second = graph.neighbors(rng.choice(near).id, limit=50)
        direct = {n.id for n in graph.neighbors(eid, limit=10_000)} | {eid}
        far = [n for n in second if n.id not in direct]
        if not far:
            continue
        t0 = time.perf_counter()
        found = graph.path(eid, rng.choice(far).id, max_depth=4)
        path_times.append(time.perf_counter() - t0)
        lengths.append(len(found) - 1 if found else 0)
    result = {
        "rows": rows,
        "load_seconds": round(load_seconds, 1),
        "extract_end_to_end_per_s": round(report.generations / report.seconds, 1),
        "extract_seconds": round(report.seconds, 1),
        "entities": counts[0], "mentions": counts[1], "relations": counts[2],
        "relation_support": counts[3],
        "neighbors_p50_ms": _p(neighbor_times, 0.5), "neighbors_p95_ms": _p(neighbor_times, 0.95),
        "neighbors_queries": len(neighbor_times),
        "path_p50_ms": _p(path_times, 0.5), "path_p95_ms": _p(path_times, 0.95),
        "path_queries": len(path_times),
        "path_lengths": {n: lengths.count(n) for n in sorted(set(lengths))},
    }  # fmt: skip
    drop_projects(lake, PROJECT)
    return result


def run_entities_bench(
    lake: Lake, *, texts: int = 3000, rows: int = 20_000, queries: int = 200, spacy: bool = True
) -> dict[str, Any]:
    rng = random.Random(11)
    started = time.perf_counter()
    sample_texts = _texts(texts, rng, None)
    builtin = BuiltinExtractor(Dictionary(DICTIONARY))
    guard = PiiGuard({"EMAIL": "pseudonymize"}, b"k" * 32)
    result: dict[str, Any] = {
        "texts": texts,
        "mean_chars": round(sum(map(len, sample_texts)) / len(sample_texts)),
        "builtin_per_s": _rate(builtin.extract, sample_texts),
        "builtin_with_pii_guard_per_s": _rate(
            lambda t: guard.filter(t, builtin.extract(t)), sample_texts
        ),
        "builtin_dev": score(builtin.extract, labelled_sample(300)),
        "builtin_held_out": score(builtin.extract, labelled_sample(200, held_out=True)),
    }
    from ..graph import ner

    if spacy and ner.available():
        extractor = ner.SpacyExtractor()
        few = sample_texts[: min(300, texts)]
        started = time.perf_counter()
        extractor.extract_many(few)
        result["spacy_per_s"] = round(len(few) / (time.perf_counter() - started), 1)
        result["spacy_version"] = extractor.version
        held = labelled_sample(200, held_out=True)
        found = dict(zip([t for t, _ in held], extractor.extract_many([t for t, _ in held]),
                         strict=True))  # fmt: skip
        result["spacy_held_out"] = score(found.__getitem__, held, ner=True)
    else:
        result["spacy_per_s"] = "n/a (the ner extra is not installed)"
    result["in_process_seconds"] = round(time.perf_counter() - started, 1)
    if rows:
        result["graph"] = _graph_queries(lake, rows, queries, rng)
    return result


def _scores(title: str, scores: dict[str, dict[str, float]]) -> list[str]:
    lines = [f"  {title}"]
    for kind, s in scores.items():
        lines.append(f"    {kind:8} gold {s['gold']:4}  precision {s['precision']:.3f}"
                     f"  recall {s['recall']:.3f}")  # fmt: skip
    return lines


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"entities bench: {result['texts']:,} texts of ~{result['mean_chars']} characters",
        f"  built-in extractor        {result['builtin_per_s']:>10,} generations/s"
        " (target >= 2,000)",
        f"  built-in + PII guard      {result['builtin_with_pii_guard_per_s']:>10,} generations/s",
        f"  spaCy NER extra           {result['spacy_per_s']:>10} generations/s",
        "precision / recall per kind (exact spans):",
        *_scores("built-in, development templates", result["builtin_dev"]),
        *_scores("built-in, held-out templates", result["builtin_held_out"]),
    ]
    if "spacy_held_out" in result:
        lines += _scores(f"spaCy {result['spacy_version']}, held-out", result["spacy_held_out"])
    graph = result.get("graph")
    if graph:
        lines += [
            f"graph of {graph['rows']:,} generations: {graph['entities']:,} entities,"
            f" {graph['mentions']:,} mentions, {graph['relations']:,} relations"
            f" ({graph['relation_support']:,} supporting rows); loaded in"
            f" {graph['load_seconds']} s, extracted in {graph['extract_seconds']} s"
            f" ({graph['extract_end_to_end_per_s']:,} generations/s end to end)",
            f"  neighbors (depth 1)  p50 {graph['neighbors_p50_ms']} ms"
            f"  p95 {graph['neighbors_p95_ms']} ms  ({graph['neighbors_queries']} queries)",
            f"  path (two hops)      p50 {graph['path_p50_ms']} ms"
            f"  p95 {graph['path_p95_ms']} ms  ({graph['path_queries']} queries,"
            f" lengths {graph['path_lengths']})",
        ]
    return "\n".join(lines)
