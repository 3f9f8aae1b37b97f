"""The PII benchmark: its result is plain JSON with both detectors' figures, the built-in
detector meets its quality targets, and a missing presidio is reported, not raised.

No timing is asserted: the machines are small and shared, so only structure and quality
figures are. No database is involved.
"""

from __future__ import annotations

import json
import sys

import pytest

from promptlake.bench.pii import TARGET_PRECISION, TARGET_RECALL, format_report, run_pii_bench
from promptlake.privacy.detect import ENTITY_TYPES, PRESIDIO_ENTITY_MAP


def _check_detector(entry: dict, types: set[str]) -> None:
    assert entry["available"] is True
    assert set(entry["metrics"]) == types
    assert entry["docs_per_s"] > 0 and entry["seconds"] > 0 and entry["us_per_kb"] > 0
    for m in entry["metrics"].values():
        assert set(m) == {"tp", "fp", "fn", "exact", "precision", "recall"}
    assert isinstance(entry["flagged_decoys"], dict)


def test_builtin_only_run_meets_quality_targets() -> None:
    lines: list[str] = []
    result = run_pii_bench(docs=80, seed=2, include_presidio=False, progress=lines.append)

    json.dumps(result)  # plain JSON
    assert result["docs"] == 80 and result["chars_per_doc"] >= 1000
    assert set(result["planted"]) == ENTITY_TYPES
    assert sum(result["planted"].values()) == 80 * 4 and result["decoys"] == 80 * 2
    builtin = result["detectors"]["builtin"]
    _check_detector(builtin, set(ENTITY_TYPES))
    for kind, m in builtin["metrics"].items():
        assert m["tp"] + m["fn"] == result["planted"][kind]
        assert m["precision"] >= TARGET_PRECISION and m["recall"] >= TARGET_RECALL, kind
    assert builtin["flagged_decoys"] == {}
    assert result["below_target"] == [] and result["meets_targets"]["quality"] is True
    presidio = result["detectors"]["presidio"]
    assert presidio == {"available": False, "reason": "skipped (include_presidio=False)"}
    assert result["builtin_vs_presidio"] is None and result["meets_targets"]["ratio"] is None
    assert any(line.startswith("builtin #3") for line in lines)

    report = format_report(result)
    assert "built-in pattern (best of 3)" in report
    assert "presidio: not measured: skipped" in report
    assert "on every type: met" in report


def test_missing_presidio_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)
    result = run_pii_bench(docs=10, seed=0, repeats=1)
    presidio = result["detectors"]["presidio"]
    assert presidio["available"] is False
    assert "pip install 'promptlake[presidio]'" in presidio["reason"]
    assert "presidio: not measured" in format_report(result)


def test_run_with_presidio_compares_on_the_same_corpus() -> None:
    pytest.importorskip("presidio_analyzer", reason="presidio-analyzer is not installed")
    result = run_pii_bench(docs=40, seed=1, repeats=1)

    json.dumps(result)
    presidio = result["detectors"]["presidio"]
    _check_detector(presidio, set(PRESIDIO_ENTITY_MAP.values()))
    assert presidio["version"] and "pattern" in presidio["mode"]
    for kind, m in presidio["metrics"].items():
        assert m["tp"] + m["fn"] == result["planted"][kind]
    assert result["builtin_vs_presidio"] > 0
    assert isinstance(result["meets_targets"]["ratio"], bool)
    report = format_report(result)
    assert "built-in / presidio:" in report and "presidio 2." in report


def test_bench_measures_phonenumbers_against_the_phone_rules() -> None:
    pytest.importorskip("phonenumbers")
    result = run_pii_bench(docs=40, include_presidio=False, repeats=1, extras=True)
    others = result["others"]
    for key in ("phonenumbers", "builtin_phone"):
        assert others[key]["available"] and set(others[key]["metrics"]) == {"PHONE"}
    assert "phonenumbers (8 plans, VALID)" in format_report(result)
