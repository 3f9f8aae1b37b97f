"""The built-in detector on text it was not written against: Faker in many locales, in
tickets, chats, logs, code and e-mail, with look-alikes (privacy/realistic.py). Recall and
precision are printed per type (``pytest -s``) and held to the targets of the issue."""

from __future__ import annotations

import pytest

from promptlake.privacy.corpus import flagged_decoys, score_findings
from promptlake.privacy.detect import ENTITY_TYPES, PatternDetector

pytest.importorskip("faker", reason="faker is in the dev extra")
pytest.importorskip("phonenumbers", reason="phonenumbers comes with the presidio extra")

from promptlake.privacy.realistic import generate_realistic


@pytest.fixture(scope="module")
def corpus():
    return generate_realistic(800, seed=101)


def test_realistic_corpus_is_varied_and_deterministic(corpus) -> None:
    assert [d.text for d in generate_realistic(20, seed=101)] == [d.text for d in corpus[:20]]
    variants = {s.variant.split(":")[0] + ":" + s.variant.split(":")[1]
                for d in corpus for s in d.spans if s.variant.startswith("phone:")}  # fmt: skip
    assert len(variants) >= 9  # every locale's numbers
    kinds = {s.variant for d in corpus for s in d.spans if s.variant.startswith("api_key:")}
    assert len(kinds) >= 15
    decoys = {s.variant for d in corpus for s in d.decoys}
    assert decoys >= {"uuid4", "sha1", "version_v", "iso8601", "order_id", "epoch_s"}
    for doc in corpus:
        for span in doc.spans + doc.decoys:
            assert doc.text[span.start : span.end].strip() == doc.text[span.start : span.end]


def test_builtin_detector_meets_the_targets_on_realistic_text(corpus) -> None:
    detector = PatternDetector()
    found = [detector.detect(d.text) for d in corpus]
    metrics = score_findings(ENTITY_TYPES, corpus, found)
    decoys = sum(len(d.decoys) for d in corpus)
    flagged = flagged_decoys(corpus, found)
    print("\ntype          planted  precision  recall")
    for kind, m in sorted(metrics.items()):
        print(f"{kind:<14}{m['tp'] + m['fn']:>7}  {m['precision']:>9}  {m['recall']:>6}")
    print(f"look-alikes kept: {1 - sum(flagged.values()) / decoys:.4f} of {decoys} {flagged}")
    for kind, m in metrics.items():
        assert m["precision"] >= 0.95 and m["recall"] >= 0.95, (kind, m)
    assert sum(flagged.values()) / decoys <= 0.05
