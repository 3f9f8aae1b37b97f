"""The run that generations logged right now belong to.

``Project.run`` sets it for the duration of a ``with`` block; the logging paths
(``Project.log``, ``Session.log``, ``Writer.log``, importers, ``@trace``) read it when no
``run`` is given. It is a context variable, so threads and asyncio tasks started outside
the block do not inherit it by accident. Kept free of heavy imports: it is on the hot path.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

# (project id, run id) of the active run, if any
ACTIVE_RUN: ContextVar[tuple[uuid.UUID, uuid.UUID] | None] = ContextVar(
    "promptlake_active_run", default=None
)


def with_active_run(project_id: uuid.UUID, fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """``fields`` with ``run`` set to the active run of ``project_id`` when none is given."""
    active = ACTIVE_RUN.get()
    if active is None or active[0] != project_id or fields.get("run") is not None:
        return fields
    return {**fields, "run": active[1]}
