"""How many rows a search could not see yet, so that it says so instead of answering
"0 results" about rows nobody indexed.

Rows are indexed off the logging path (the writer's background indexer, ``promptlake
embed``), so a project may hold rows that are stored but not yet in ``generation_search``
(full text) or without a vector of the embedder searched. ``search`` returns a
:class:`SearchResults` (a list of hits) whose ``pending`` counts them for the lists it
used, and whose ``note`` says how to index them; the CLI prints the note. Counting is two
index-only counts per project (milliseconds at 100k rows), so it is cached for a few
seconds per project handle, and dropped whenever a writer of that handle flushes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Project

TTL_SECONDS = 5.0
_CACHE = "_search_pending"


class SearchResults(list):
    """The hits of a search (a plain list of :class:`SearchHit`), and ``pending``: how many
    of the project's rows the lists searched could not see (not indexed yet)."""

    pending: int = 0
    project_name: str = ""

    @property
    def note(self) -> str | None:
        """A sentence about the unindexed rows, or None when there are none."""
        if not self.pending:
            return None
        return (
            f"{self.pending} rows of project {self.project_name!r} are not indexed for search"
            f" yet; `promptlake embed --project {self.project_name}` indexes them"
        )


def forget(project: Project) -> None:
    """Drop the cached counts (a writer of this handle stored rows)."""
    project.__dict__.pop(_CACHE, None)


def pending_rows(conn: Any, project: Project, text: bool, embedder: str | None) -> int:
    """Rows of ``project`` missing from the full-text index (``text``) or without a vector
    of ``embedder``: the larger count."""
    key = (text, embedder)
    cache: dict = project.__dict__.setdefault(_CACHE, {})
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] <= TTL_SECONDS:
        return hit[1]
    total = conn.execute(
        "SELECT count(*) FROM generations WHERE project_id = %s", (project.id,)
    ).fetchone()[0]
    missing = 0
    if text:
        indexed = conn.execute(
            "SELECT count(*) FROM generation_search WHERE project_id = %s", (project.id,)
        ).fetchone()[0]
        missing = max(missing, total - indexed)
    if embedder is not None:
        embedded = conn.execute(
            "SELECT count(*) FROM generation_embeddings WHERE project_id = %s AND embedder = %s",
            (project.id, embedder),
        ).fetchone()[0]
        missing = max(missing, total - embedded)
    cache[key] = (now, missing)
    return missing
