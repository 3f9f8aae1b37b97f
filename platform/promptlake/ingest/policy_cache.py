"""The PII policy every logged row is anonymized with, kept so that logging never needs
the database.

Why it exists. The write paths apply the project's live policy to each row, and re-read it
every ``Project.POLICY_TTL_SECONDS`` so that a new policy takes effect without restarting.
That re-read is the only database lookup on the bulk writer's ``log``: with the database
down longer than the TTL, ``log`` used to raise ``DatabaseUnavailableError`` instead of
buffering and journaling as the writer promises. Now a failed re-read keeps the policy last
read (nobody can change it while the database is down; a change made just before the outage
is picked up at the next successful re-read, as with the TTL itself). A project whose
policy was never read (the database went away between ``lake.project()`` and the first
``log``) gets a *deferred* anonymizer that reads the policy when the row is finished, at
flush time; if the database is still down then (the batch is being journaled), it applies
the default policy (pseudonymize every pattern type), so that a journal never holds text a
policy might have removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseUnavailableError

if TYPE_CHECKING:
    from ..client import Project

log = logging.getLogger(__name__)

Anonymize = Callable[[Any], None]
_CACHE = "_anonymizer_cache"


def cached_anonymizer(project: Project, ttl: float) -> Anonymize | None:
    """The ingest anonymizer of ``project``'s live policy, re-read at most every ``ttl``
    seconds; never raises because the database is unavailable (see the module docstring)."""
    from ..privacy.anonymize import ingest_anonymizer

    now = time.monotonic()
    cached = project.__dict__.get(_CACHE)
    if cached is not None and now - cached[0] <= ttl:
        return cached[1]
    try:
        fresh = ingest_anonymizer(project)
    except DatabaseUnavailableError as exc:
        if cached is None:
            return _deferred(project)
        log.info("promptlake: PII policy not re-read (%s); keeping the one read before", exc)
        project.__dict__[_CACHE] = (now, cached[1])  # try again after another ttl
        return cached[1]
    project.__dict__[_CACHE] = (now, fresh)
    return fresh


def _deferred(project: Project) -> Anonymize:
    """An anonymizer that reads the policy when first applied (see the module docstring)."""
    resolved: list[Anonymize | None] = []

    def anonymize(row: Any) -> None:
        if not resolved:
            from ..privacy import keys
            from ..privacy.anonymize import Anonymizer, ingest_anonymizer
            from ..privacy.policy import DEFAULT_POLICY

            try:
                fn = ingest_anonymizer(project)
                project.__dict__[_CACHE] = (time.monotonic(), fn)
            except DatabaseUnavailableError:
                fn = Anonymizer(project, DEFAULT_POLICY, keys.master_key(project.lake.settings))
            resolved.append(fn)
        fn = resolved[0]
        if fn is not None:
            fn(row)

    return anonymize
