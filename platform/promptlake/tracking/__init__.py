"""Runs (batch jobs, evaluations) recorded in the database and in MLflow.

``Project.run`` is the entry point; MLflow itself is imported only when a run starts.
"""

from __future__ import annotations

from .runs import TrackedRun, default_tracking_uri, run_metrics

__all__ = ["TrackedRun", "default_tracking_uri", "run_metrics"]
