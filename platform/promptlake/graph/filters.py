"""The "mentions entity X" filter that search and dataset export share.

An entity is named by its id, canonical name or an alias, compared as resolution does
(:func:`promptlake.graph.resolve.entity_key` under every kind), so ``--entity postgres``
finds what the dictionary filed under ``PostgreSQL``. A name that matches no entity
selects nothing (an empty result, not an error: the graph may not be extracted yet).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..db.models import ENTITY_KINDS
from .resolve import entity_key

# %s placeholders: project id, keys (text[]), lower-cased names (text[])
CONDITION = (
    "EXISTS (SELECT 1 FROM entity_mentions em WHERE em.project_id = g.project_id"
    " AND em.generation_id = g.id AND em.entity_id IN (SELECT e.id FROM entities e"
    " WHERE e.project_id = {p} AND (e.id::text = ANY({names}) OR e.key = ANY({keys})"
    " OR EXISTS (SELECT 1 FROM unnest(e.aliases) a WHERE lower(a) = ANY({names})))))"
)


def entity_params(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(keys, lower-cased names) for :data:`CONDITION`."""
    wanted = [n for n in names if isinstance(n, str) and n.strip()]
    keys = sorted({entity_key(kind, n) for n in wanted for kind in ENTITY_KINDS})
    return keys, sorted({n.strip().lower() for n in wanted})
