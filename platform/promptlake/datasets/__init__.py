"""Datasets cut from the store: deterministic Parquet exports, versioned by DVC and
recorded in the database.

The top-level ``dvc.yaml`` runs ``export → dedup → anonymize → split → stats → record``
(``pipeline.py``) with the parameters of ``params.yaml`` (``params.py``); each cut becomes
a ``dataset_versions`` row with one ``dataset_items`` row per generation and split
(``registry.py``). ``proj.datasets`` is the Python face of it; ``promptlake dataset …``
the shell's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .export import ExportReport
from .params import ExportFilter
from .registry import DatasetDiff, DatasetVersion

if TYPE_CHECKING:
    from ..client import Project

__all__ = ["DatasetDiff", "DatasetVersion", "Datasets", "ExportFilter", "ExportReport"]


class Datasets:
    """``proj.datasets``: export, and the versions the pipeline recorded."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def __repr__(self) -> str:
        return f"<Datasets of {self.project.name!r}>"

    def export(
        self,
        path: str | Path,
        *,
        progress: Callable[[int, int], None] | None = None,
        **filter: Any,
    ) -> ExportReport:
        """Write the project's generations matching ``filter`` (the keys of the
        ``export`` section of ``params.yaml``: models, origins, statuses, tags, since,
        until, min_scores, limit) to a Parquet file."""
        from . import export as exporter
        from .params import parse

        params = parse(
            {"dataset": {"name": "export"}, "export": {"project": self.project.name, **filter}}
        )
        return exporter.export(self.project, params.export, path, progress=progress)

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        """Recorded versions, newest first."""
        from .registry import versions

        return versions(self.project, name)

    def get(self, ref: DatasetVersion | uuid.UUID | str) -> DatasetVersion:
        """A version by id, id prefix, name (latest) or ``name@md5-prefix``."""
        from .registry import get

        return get(self.project, ref)

    def items(self, ref: DatasetVersion | uuid.UUID | str) -> dict[str, list[uuid.UUID]]:
        """Generation ids per split."""
        from .registry import items

        return items(self.project, ref)

    def diff(self, a: Any, b: Any) -> DatasetDiff:
        """Rows added, removed and moved between two versions."""
        from .registry import diff

        return diff(self.project, a, b)
