"""The entities bench runs end to end on a small project (its figures are in the report)."""

from __future__ import annotations

from promptlake.bench.entities import format_report, run_entities_bench


def test_bench_entities_small(lake) -> None:
    result = run_entities_bench(lake, texts=50, rows=300, queries=10, spacy=False)
    assert result["builtin_per_s"] > 0 and 1800 <= result["mean_chars"] <= 2100
    graph = result["graph"]
    print(result["in_process_seconds"], {k: v for k, v in graph.items() if "seconds" in k})
    assert graph["entities"] > 100 and graph["relations"] > 0
    assert graph["neighbors_queries"] == 10 and graph["path_queries"] > 0
    assert set(graph["path_lengths"]) <= {2}  # two hops apart, and never a shortcut found
    assert "neighbors (depth 1)" in format_report(result)
    assert lake.projects() == []  # the bench project is dropped
