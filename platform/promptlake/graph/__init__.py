"""The entity graph of a project: who and what its generations talk about, and how they connect.

Tables, not a second database (migration 0012): ``entities`` (kind, canonical name,
aliases), ``entity_mentions`` (generation, field, span, surface, confidence, extractor),
``entity_relations`` (subject, predicate, object) with ``relation_support`` (the
generations behind each), all under the project's row-level security, queried with
recursive SQL (``query.py``). Extraction (``store.py``) is incremental; resolution
(``resolve.py``) merges aliases; :mod:`.guard` keeps PII the policy removes out of it.

``proj.entities`` is an :class:`Entities`: call it to list entities, or use its verbs
(``extract``, ``get``, ``mentions``, ``neighbors``, ``path``, ``merge``, ``rename``,
``relate``, ``resolve``, ``set_dictionary``). Lineage (``proj.lineage``) walks the
provenance graph the same way (``lineage.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from ..errors import Problem, ValidationError
from .extract import BuiltinExtractor, Dictionary, Mention
from .lineage import LineageNode, lineage
from .query import EntityInfo, MentionInfo, Neighbor
from .resolve import entity_key
from .store import ExtractReport, dictionary_version

if TYPE_CHECKING:
    from ..client import Project

EXTRACTORS = ("builtin", "spacy")
DICTIONARY_KINDS = ("product", "model")


def _check_dictionary(entries: Any) -> dict[str, dict[str, list[str]]]:
    problems = []
    out: dict[str, dict[str, list[str]]] = {}
    if not isinstance(entries, Mapping):
        raise ValidationError(
            [Problem("dictionary", "must map product/model to {name: [aliases]}")]
        )
    for kind, names in entries.items():
        if kind not in DICTIONARY_KINDS:
            problems.append(Problem(f"dictionary.{kind}", "must be product or model"))
            continue
        if not isinstance(names, Mapping):
            problems.append(Problem(f"dictionary.{kind}", "must map names to lists of aliases"))
            continue
        for name, aliases in names.items():
            forms = [name, *(aliases or [])] if isinstance(aliases, list | tuple) else None
            if forms is None or not all(isinstance(f, str) and f.strip() for f in forms):
                problems.append(Problem(f"dictionary.{kind}.{name}", "aliases: a list of names"))
                continue
            out.setdefault(kind, {})[name.strip()] = [a.strip() for a in aliases]
    if problems:
        raise ValidationError(problems)
    return out


class Entities:
    """The entity graph of one project (see the package docstring)."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def __call__(
        self, kind: str | None = None, *, match: str | None = None, limit: int = 50
    ) -> list[EntityInfo]:
        """Entities (of ``kind``, whose name contains ``match``), most mentioned first."""
        from .query import list_entities

        with self.project.lake._transaction(self.project) as conn:
            return list_entities(conn, self.project, kind=kind, match=match, limit=limit)

    list = __call__

    # -- extraction -------------------------------------------------------------------

    def dictionary(self) -> dict[str, dict[str, list[str]]]:
        """The project's product and model names: ``{kind: {name: [aliases]}}``."""
        with self.project.lake._transaction(self.project) as conn:
            row = conn.execute(
                "SELECT settings->'entities'->'dictionary' FROM projects WHERE id = %s",
                (self.project.id,),
            ).fetchone()
        return dict(row[0] or {}) if row else {}

    def set_dictionary(self, entries: Mapping[str, Mapping[str, Iterable[str]]]) -> None:
        """Replace the dictionary (admins). The next ``extract`` re-reads every generation
        with it, since the extractor's version includes the dictionary's hash."""
        from ..access import require_member, write_audit

        clean = _check_dictionary(entries)
        require_member(self.project, ("admin",))
        with self.project.lake._transaction(self.project) as conn:
            conn.execute(
                "UPDATE projects SET settings = jsonb_set(jsonb_set(settings, '{entities}',"
                " coalesce(settings->'entities', '{}'::jsonb)), '{entities,dictionary}', %s)"
                " WHERE id = %s",
                (Jsonb(clean), self.project.id),
            )
            write_audit(conn, self.project, "entities", "dictionary",
                        {"kinds": {k: len(v) for k, v in clean.items()}})  # fmt: skip

    def extractor(self, name: str = "builtin") -> Any:
        """The named extractor, set up for this project (its dictionary)."""
        if name == "builtin":
            entries = self.dictionary()
            extractor = BuiltinExtractor(Dictionary(entries))
            if entries:
                extractor.version = f"{extractor.version}+{dictionary_version(entries)}"
            return extractor
        if name == "spacy":
            from .ner import SpacyExtractor

            return SpacyExtractor()
        raise ValidationError([Problem("extractor", f"must be one of {', '.join(EXTRACTORS)}")])

    def extract(
        self,
        extractors: Sequence[str] | str = ("builtin",),
        *,
        rebuild: bool = False,
        batch_size: int = 2000,
        limit: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ExtractReport:
        """Read new and changed generations into the graph (admins); see ``store.py``."""
        from ..access import require_member
        from .store import run

        names = [extractors] if isinstance(extractors, str) else list(extractors)
        if not names:
            raise ValidationError([Problem("extractors", "name at least one")])
        if not 1 <= batch_size <= 100_000:
            raise ValidationError([Problem("batch_size", "must be between 1 and 100000")])
        require_member(self.project, ("admin",))
        return run(self.project, [self.extractor(n) for n in names], rebuild=rebuild,
                   batch_size=batch_size, limit=limit, progress=progress)  # fmt: skip

    # -- reading ----------------------------------------------------------------------

    def get(self, entity: Any, *, kind: str | None = None) -> EntityInfo:
        """One entity by id, name or alias."""
        from .query import entity_info, find_entity

        with self.project.lake._transaction(self.project) as conn:
            eid, _, _ = find_entity(conn, self.project, entity, kind)
            return entity_info(conn, self.project, eid)

    def mentions(
        self, entity: Any, *, kind: str | None = None, limit: int = 20
    ) -> list[MentionInfo]:
        from .query import find_entity, mentions

        with self.project.lake._transaction(self.project) as conn:
            eid, _, _ = find_entity(conn, self.project, entity, kind)
            return mentions(conn, self.project, eid, limit)

    def neighbors(
        self,
        entity: Any,
        *,
        kind: str | None = None,
        depth: int = 1,
        predicate: str | None = None,
        limit: int = 50,
    ) -> list[Neighbor]:
        """Entities related to ``entity`` (within ``depth`` edges)."""
        from .query import find_entity, neighbors

        with self.project.lake._transaction(self.project) as conn:
            eid, _, _ = find_entity(conn, self.project, entity, kind)
            return neighbors(conn, self.project, eid, depth=depth, predicate=predicate,
                             limit=limit)  # fmt: skip

    def path(self, source: Any, target: Any, *, max_depth: int = 4) -> list[tuple] | None:
        """The shortest path between two entities: ``[(id, kind, name, predicate), ...]``."""
        from .query import find_entity, path

        with self.project.lake._transaction(self.project) as conn:
            a, _, _ = find_entity(conn, self.project, source, what="source")
            b, _, _ = find_entity(conn, self.project, target, what="target")
            return path(conn, self.project, a, b, max_depth=max_depth)

    # -- correcting by hand ----------------------------------------------------------

    def merge(self, source: Any, into: Any) -> EntityInfo:
        """Merge ``source`` into ``into`` (admins): its mentions and relations move, its
        name and aliases become aliases of ``into``, so later extractions resolve there."""
        from ..access import require_member, write_audit
        from .edit import merge
        from .query import entity_info, find_entity

        require_member(self.project, ("admin",))
        with self.project.lake._transaction(self.project) as conn:
            src, _, _ = find_entity(conn, self.project, source, what="source")
            dst, _, _ = find_entity(conn, self.project, into, what="into")
            if src == dst:
                raise ValidationError([Problem("into", "is the same entity as source")])
            merge(conn, self.project.id, src, dst)
            write_audit(conn, self.project, "entities", f"merge {src} into {dst}", {})  # fmt: skip
            return entity_info(conn, self.project, dst)

    def rename(self, entity: Any, name: str, *, kind: str | None = None) -> EntityInfo:
        """Give ``entity`` a new canonical name (admins); the old one stays an alias."""
        from ..access import require_member, write_audit
        from .edit import rename
        from .query import entity_info, find_entity

        if not isinstance(name, str) or not name.strip() or "\x00" in name or len(name) > 500:
            raise ValidationError([Problem("name", "must be 1-500 characters of text")])
        require_member(self.project, ("admin",))
        with self.project.lake._transaction(self.project) as conn:
            eid, ekind, _ = find_entity(conn, self.project, entity, kind)
            rename(conn, self.project, eid, ekind, name.strip())
            write_audit(conn, self.project, "entities", f"rename {eid}", {})
            return entity_info(conn, self.project, eid)

    def relate(
        self, subject: Any, predicate: str, object: Any, *, generations: Iterable[Any] = ()
    ) -> uuid.UUID:
        """Record a relation by hand (admins), optionally with supporting generations."""
        from ..access import as_uuid, require_member
        from .edit import relate
        from .query import find_entity

        if not isinstance(predicate, str) or not predicate.strip() or len(predicate) > 100:
            raise ValidationError([Problem("predicate", "must be 1-100 characters")])
        require_member(self.project, ("admin",))
        gids = [as_uuid(g) for g in generations]
        with self.project.lake._transaction(self.project) as conn:
            s, _, _ = find_entity(conn, self.project, subject, what="subject")
            o, _, _ = find_entity(conn, self.project, object, what="object")
            if s == o:
                raise ValidationError([Problem("object", "is the subject itself")])
            return relate(conn, self.project.id, s, predicate.strip(), o, gids)

    def resolve(
        self,
        *,
        embedder: Any = None,
        threshold: float = 0.92,
        kinds: Sequence[str] = ("name", "person", "org", "place", "product", "model"),
        apply: bool = True,
        limit: int = 20_000,
    ) -> list[tuple[str, str, float]]:
        """Merge entities whose names the project's embedder finds alike (cosine at least
        ``threshold``, same namespace of kinds); the more mentioned one is kept. Returns
        ``(kept, merged, similarity)`` names; ``apply=False`` only proposes (analysts)."""
        from .edit import resolve_by_embedding

        if not 0 < threshold <= 1:
            raise ValidationError([Problem("threshold", "must be in (0, 1]")])
        return resolve_by_embedding(self, embedder=embedder, threshold=threshold,
                                    kinds=tuple(kinds), apply=apply, limit=limit)  # fmt: skip


__all__ = [
    "EXTRACTORS",
    "BuiltinExtractor",
    "Dictionary",
    "Entities",
    "EntityInfo",
    "ExtractReport",
    "LineageNode",
    "Mention",
    "MentionInfo",
    "Neighbor",
    "entity_key",
    "lineage",
]
