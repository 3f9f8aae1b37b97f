"""How fast and how accurately the built-in PII detector works, measured against Presidio.

Anonymization runs on the logging path, before every write, so its detector has to cost
a small fraction of the write it precedes and still find what it claims to find. This
module measures both promises in one run, on one generated corpus
(:func:`promptlake.privacy.corpus.generate_corpus`: ~1 KB support-chat documents with
planted values of every built-in entity type and planted look-alikes), for two detectors:

``builtin``
    :class:`~promptlake.privacy.detect.PatternDetector`, all of its entity types.
``presidio``
    :class:`~promptlake.privacy.detect.PresidioDetector` in pattern-only mode (no NLP
    model), asked for the six entity types both engines report. If presidio-analyzer is
    not installed the result says so instead of failing.

Fairness: the corpus is generated before any timing; each detector runs once on the first
documents, untimed, so that lazy set-up (regex compilation, presidio's recognizers) is not
charged to throughput, and building presidio's engine (imports included) is reported
separately as ``setup_s``. The built-in detector is timed ``repeats`` times and its best run
kept, because noise on a small shared host only ever slows a run down; presidio, about two
orders of magnitude slower, is timed once, over the same documents. The built-in detector
does more work than presidio here (eight entity types against six), so the ratio
understates it. Precision and recall are scored from the findings of the timed run, with
the rule of :func:`~promptlake.privacy.corpus.evaluate`; the targets apply to the built-in
detector. The corpus plants exactly the formats the built-in detector is documented to
cover, so its figures check that promise (and catch regressions); they are not a
measurement on real traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigurationError
from ..privacy.corpus import (
    LabelledDoc,
    flagged_decoys,
    generate_corpus,
    planted_counts,
    score_findings,
)
from ..privacy.detect import Detector, Finding, PatternDetector, PresidioDetector, presidio_version

Progress = Callable[[str], None]

TARGET_RATIO = 20.0
"""The built-in detector should process at least 20 times as many documents per second."""
TARGET_PRECISION = 0.95
TARGET_RECALL = 0.95
"""Per entity type, for the built-in detector, on the generated corpus."""

DETECTORS = ("builtin", "presidio")
WARMUP_DOCS = 20


def run_pii_bench(
    docs: int = 2000,
    seed: int = 0,
    include_presidio: bool = True,
    progress: Progress | None = None,
    *,
    size: int = 1000,
    repeats: int = 3,
    corpus: str = "generated",
    extras: bool = False,
) -> dict[str, Any]:
    """Detect PII in ``docs`` generated documents of ~``size`` characters with both
    detectors; return speed and quality figures as plain JSON.

    ``detectors`` holds, per detector: ``available`` (and ``reason`` when not),
    ``docs_per_s``, ``us_per_kb`` (microseconds per 1,000 characters), ``seconds`` (the
    kept run), ``setup_s``, ``metrics`` (per entity type: tp, fp, fn, exact, precision,
    recall) and ``flagged_decoys`` (look-alikes reported, by variant). ``builtin_vs_presidio``
    is the ratio of their docs/s (None without presidio); ``meets_targets`` says whether
    the ratio (None without presidio) and the built-in quality targets are met, and
    ``below_target`` lists each built-in figure that is not.

    With ``extras``, ``others`` adds two measurements on the first :data:`EXTRA_DOCS`
    documents: ``phonenumbers`` (Google's libphonenumber matcher over the eight numbering
    plans, strict ``VALID`` leniency, phones only, against the built-in phone rules on the
    same documents) and, on the realistic corpus, ``ner`` (Presidio with the spaCy model of
    the ``ner`` extra: person names and locations).
    """
    if docs < 1 or repeats < 1:
        raise ValueError("docs and repeats must be positive")
    say = progress or (lambda _line: None)

    kind = corpus
    if kind == "realistic":  # privacy/realistic.py: Faker text in many locales
        from ..privacy.realistic import generate_realistic

        say(f"generating {docs:,} realistic documents (Faker, seed {seed})")
        corpus = generate_realistic(docs, seed=seed)
    elif kind == "generated":
        say(f"generating {docs:,} documents of ~{size:,} characters (seed {seed})")
        corpus = generate_corpus(docs, seed=seed, size=size)
    else:
        raise ValueError(f"corpus must be generated or realistic, not {kind!r}")
    chars = sum(len(d.text) for d in corpus)
    detectors: dict[str, dict[str, Any]] = {}
    full = corpus
    if kind == "realistic":  # names and addresses are planted for the NER extra only
        corpus = [_only_builtin(d) for d in corpus]

    start = time.perf_counter()
    builtin = PatternDetector()
    detectors["builtin"] = _measure(
        "builtin", builtin, corpus, chars, repeats, time.perf_counter() - start, say
    )

    if not include_presidio:
        detectors["presidio"] = {"available": False, "reason": "skipped (include_presidio=False)"}
    else:
        start = time.perf_counter()
        try:
            presidio = PresidioDetector()
        except ConfigurationError as exc:
            detectors["presidio"] = {"available": False, "reason": str(exc)}
            say(f"presidio: not measured ({exc})")
        else:
            setup = time.perf_counter() - start
            say(f"presidio {presidio_version()}: engine built in {setup:.1f} s")
            detectors["presidio"] = _measure("presidio", presidio, corpus, chars, 1, setup, say)
            detectors["presidio"]["version"] = presidio_version()
            detectors["presidio"]["mode"] = "pattern recognizers only (no NLP model)"

    others = _extras(corpus, full, kind, say) if extras else None
    ratio = None
    if detectors["presidio"].get("available"):
        ratio = detectors["builtin"]["docs_per_s"] / detectors["presidio"]["docs_per_s"]
    below = _below_target(detectors["builtin"]["metrics"])
    return {
        "docs": docs,
        "corpus": kind,
        "seed": seed,
        "size": size,
        "repeats": repeats,
        "chars_per_doc": round(chars / docs, 1),
        "planted": planted_counts(corpus),
        "decoys": sum(len(d.decoys) for d in corpus),
        "detectors": detectors,
        "builtin_vs_presidio": None if ratio is None else round(ratio, 1),
        "targets": {"ratio": TARGET_RATIO, "precision": TARGET_PRECISION, "recall": TARGET_RECALL},
        "meets_targets": {
            "ratio": None if ratio is None else ratio >= TARGET_RATIO,
            "quality": not below,
        },
        "below_target": below,
        "others": others,
    }


EXTRA_DOCS = 300
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "AU", "JP")


class PhonenumbersDetector:
    """libphonenumber's matcher, once per region, as a phone-only detector (measured
    here as the alternative to the hand-written phone rules of privacy/phones.py)."""

    name = "phonenumbers"
    entity_types = frozenset({"PHONE"})

    def __init__(self, regions: Sequence[str] = PHONE_REGIONS) -> None:
        import phonenumbers

        self._pn = phonenumbers
        self.regions = tuple(regions)

    def detect(self, text: str) -> list[Finding]:
        from ..privacy.detect import resolve_overlaps

        leniency = self._pn.Leniency.VALID
        found = [
            Finding("PHONE", m.start, m.end, 1.0, self.name)
            for region in self.regions
            for m in self._pn.PhoneNumberMatcher(text, region, leniency=leniency)
        ]
        return resolve_overlaps(found)


def _extras(
    corpus: Sequence[LabelledDoc], full: Sequence[LabelledDoc], kind: str, say: Progress
) -> dict[str, Any]:
    sample = list(corpus[:EXTRA_DOCS])
    chars = sum(len(d.text) for d in sample)
    out: dict[str, Any] = {}
    try:
        phones = PhonenumbersDetector()
    except ImportError:
        out["phonenumbers"] = {"available": False, "reason": "phonenumbers is not installed"}
    else:
        out["phonenumbers"] = _measure("phonenumbers", phones, sample, chars, 1, 0.0, say)
        out["builtin_phone"] = _measure(
            "built-in phone rules", PatternDetector({"PHONE"}), sample, chars, 1, 0.0, say
        )
    if kind == "realistic":
        start = time.perf_counter()
        try:
            ner = _ner_detector()
        except ConfigurationError as exc:
            out["ner"] = {"available": False, "reason": str(exc)}
        else:
            setup = time.perf_counter() - start
            named = list(full[:EXTRA_DOCS])
            out["ner"] = _measure("presidio+spaCy NER", ner, named, chars, 1, setup, say)
    return out


def _ner_detector() -> Detector:
    from ..privacy.detect import ner_model

    return PresidioDetector(use_nlp=True, spacy_model=ner_model(),
                            entity_types={"PERSON", "LOCATION"})  # fmt: skip


def _only_builtin(doc: LabelledDoc) -> LabelledDoc:
    from ..privacy.detect import ENTITY_TYPES

    spans = tuple(s for s in doc.spans if s.entity_type in ENTITY_TYPES)
    return LabelledDoc(doc.text, spans, doc.decoys)


def _measure(
    label: str,
    detector: Detector,
    corpus: Sequence[LabelledDoc],
    chars: int,
    repeats: int,
    setup: float,
    say: Progress,
) -> dict[str, Any]:
    texts = [d.text for d in corpus]
    for text in texts[:WARMUP_DOCS]:
        detector.detect(text)
    best = float("inf")
    findings: list[list[Finding]] = []
    for repeat in range(repeats):
        start = time.perf_counter()
        run = [detector.detect(text) for text in texts]
        seconds = time.perf_counter() - start
        say(
            f"{label} #{repeat + 1}: {len(texts):,} docs in {seconds:.2f} s"
            f" ({len(texts) / seconds:,.0f} docs/s)"
        )
        if seconds < best:
            best = seconds
        if not findings:
            findings = run
    metrics = score_findings(detector.entity_types, corpus, findings)
    return {
        "available": True,
        "name": detector.name,
        "entity_types": sorted(detector.entity_types),
        "setup_s": round(setup, 3),
        "seconds": round(best, 4),
        "docs_per_s": round(len(texts) / best, 1),
        "us_per_kb": round(best / chars * 1e9, 1),
        "metrics": metrics,
        "flagged_decoys": flagged_decoys(corpus, findings),
    }


def _below_target(metrics: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for kind, m in sorted(metrics.items()):
        for name, target in (("precision", TARGET_PRECISION), ("recall", TARGET_RECALL)):
            value = m[name]
            if value is None or value < target:
                shown = "n/a" if value is None else f"{value:.3f}"
                out.append(f"{kind} {name} {shown} < {target}")
    return out


def format_report(result: dict[str, Any]) -> str:
    """A short table of the figures of :func:`run_pii_bench`."""
    builtin, presidio = result["detectors"]["builtin"], result["detectors"]["presidio"]
    planted = result["planted"]
    lines = [
        f"PII detection benchmark: {result['docs']:,} docs of ~{result['chars_per_doc']:,.0f}"
        f" characters (seed {result['seed']}), {sum(planted.values()):,} planted values,"
        f" {result['decoys']:,} look-alikes",
        f"  {'detector':<42}{'docs/s':>10}{'us/KB':>9}{'setup s':>9}",
        f"  {'built-in pattern (best of ' + str(result['repeats']) + ')':<42}"
        f"{builtin['docs_per_s']:>10,.0f}{builtin['us_per_kb']:>9,.0f}{builtin['setup_s']:>9.2f}",
    ]
    if presidio["available"]:
        label = f"presidio {presidio['version']} (pattern-only, once)"
        lines.append(
            f"  {label:<42}{presidio['docs_per_s']:>10,.1f}{presidio['us_per_kb']:>9,.0f}"
            f"{presidio['setup_s']:>9.2f}"
        )
        verdict = "met" if result["meets_targets"]["ratio"] else "NOT met"
        lines.append(
            f"  built-in / presidio: {result['builtin_vs_presidio']:,.1f}x"
            f"  (target >= {result['targets']['ratio']:.0f}x: {verdict})"
        )
    else:
        lines.append(f"  presidio: not measured: {presidio['reason']}")
    lines.append(f"  {'entity type':<14}{'planted':>8}   {'built-in P / R':<18}{'presidio P / R'}")
    for kind in sorted(builtin["metrics"]):
        theirs = presidio.get("metrics", {}).get(kind) if presidio["available"] else None
        lines.append(
            f"  {kind:<14}{planted.get(kind, 0):>8,}   {_pr(builtin['metrics'][kind]):<18}"
            f"{_pr(theirs) if theirs else '-'}"
        )
    lines.append(f"  look-alikes flagged: built-in {_flagged(builtin, result['decoys'])}")
    if presidio["available"]:
        lines.append(f"                       presidio {_flagged(presidio, result['decoys'])}")
    others = result.get("others") or {}
    for key, label in (("builtin_phone", "built-in phone rules"),
                       ("phonenumbers", "phonenumbers (8 plans, VALID)"),
                       ("ner", "presidio + spaCy NER")):  # fmt: skip
        other = others.get(key)
        if other is None:
            continue
        if not other.get("available"):
            lines.append(f"  {label}: not measured: {other['reason']}")
            continue
        figures = ", ".join(f"{t} {_pr(m)}" for t, m in sorted(other["metrics"].items()))
        flagged = sum(other["flagged_decoys"].values())
        lines.append(
            f"  {label:<30} {other['docs_per_s']:>8,.1f} docs/s  P / R: {figures};"
            f" look-alikes flagged {flagged}"
        )
    verdict = (
        "met"
        if result["meets_targets"]["quality"]
        else "NOT met: " + "; ".join(result["below_target"])
    )
    lines.append(
        f"  built-in precision and recall >= {result['targets']['precision']:.2f}"
        f" on every type: {verdict}"
    )
    return "\n".join(lines)


def _pr(m: dict[str, Any]) -> str:
    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    return f"{fmt(m['precision'])} / {fmt(m['recall'])}"


def _flagged(detector: dict[str, Any], total: int) -> str:
    flagged = detector["flagged_decoys"]
    count = sum(flagged.values())
    if not count:
        return f"0 of {total:,}"
    worst = sorted(flagged.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
    return f"{count:,} of {total:,} (" + ", ".join(f"{k} {v}" for k, v in worst) + ")"


__all__ = ["TARGET_PRECISION", "TARGET_RATIO", "TARGET_RECALL", "format_report", "run_pii_bench"]
