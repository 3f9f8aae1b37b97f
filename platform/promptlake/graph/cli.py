"""``promptlake entities …`` and ``promptlake lineage``: thin commands over the graph API.

Each parses its options, calls one method of :class:`promptlake.graph.Entities` (or
:func:`promptlake.graph.lineage`) and prints a table, or JSON with ``--json``.
"""

from __future__ import annotations

import json

import click

from ..cli import _json_default, _lake, _progress, print_table

PROJECT = click.option("--project", required=True, help="The project whose graph to use.")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
KIND = click.option(
    "--kind", help="Entity kind (url, package, person, ...) when a name is ambiguous."
)


def _dump(value: object) -> None:
    click.echo(json.dumps(value, indent=2, default=_json_default))


@click.group()
def entities() -> None:
    """The entity graph: who and what generations mention, and how they connect.

    \b
    extract                 read new and changed generations (admins)
    list, show NAME         entities by mentions; one entity with its mentions
    neighbors NAME          related entities (--depth)
    path A B                the shortest path between two entities
    merge A INTO, rename A NEW   corrections by hand (admins)
    """


@entities.command()
@PROJECT
@click.option(
    "--extractor", "extractors", multiple=True, type=click.Choice(["builtin", "spacy"]),
    help="Repeatable; default builtin (spacy needs the ner extra).",
)  # fmt: skip
@click.option("--rebuild", is_flag=True, help="Read every generation again.")
@click.option("--batch-size", default=2000, show_default=True, type=click.IntRange(1, 100_000))
def extract(project: str, extractors: tuple[str, ...], rebuild: bool, batch_size: int) -> None:
    """Extract entities from generations not read yet (or changed since)."""
    with _lake() as lake, _progress("extracting") as advance:
        proj = lake.project(project, create=False)
        report = proj.entities.extract(
            extractors or ("builtin",), rebuild=rebuild, batch_size=batch_size, progress=advance
        )
    click.echo(f"{report} at {report.generations_per_second:,.0f} generations/s")


@entities.command(name="list")
@PROJECT
@click.option("--kind")
@click.option("--match", help="Names containing this text.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@AS_JSON
def list_(project: str, kind: str | None, match: str | None, limit: int, as_json: bool) -> None:
    """Entities, most mentioned first."""
    with _lake() as lake:
        found = lake.project(project, create=False).entities(kind, match=match, limit=limit)
    if as_json:
        _dump([e.to_dict() for e in found])
        return
    print_table(None, ["kind", "name", "generations", "mentions", "aliases", "id"],
                [(e.kind, e.name, e.generations, e.mentions, ", ".join(e.aliases), e.id)
                 for e in found])  # fmt: skip


@entities.command()
@click.argument("entity")
@PROJECT
@KIND
@click.option("--mentions", "limit", default=10, show_default=True, type=click.IntRange(0, 1000))
@AS_JSON
def show(entity: str, project: str, kind: str | None, limit: int, as_json: bool) -> None:
    """One entity (by name, alias or id) and its latest mentions."""
    with _lake() as lake:
        graph = lake.project(project, create=False).entities
        info = graph.get(entity, kind=kind)
        found = graph.mentions(info.id, limit=limit) if limit else []
    if as_json:
        _dump({**info.to_dict(), "mentions": [m.__dict__ for m in found]})
        return
    aliases = f" (also {', '.join(info.aliases)})" if info.aliases else ""
    click.echo(f"{info.kind} {info.name}{aliases}: {info.mentions} mentions in"
               f" {info.generations} generations [{info.source}] {info.id}")  # fmt: skip
    if found:
        print_table(None, ["generation", "field", "span", "surface", "extractor"],
                    [(m.generation_id, m.field, f"{m.start}-{m.end}", m.surface, m.extractor)
                     for m in found])  # fmt: skip


@entities.command()
@click.argument("entity")
@PROJECT
@KIND
@click.option("--depth", default=1, show_default=True, type=click.IntRange(1, 4))
@click.option("--predicate", help="Only edges with this predicate.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@AS_JSON
def neighbors(entity: str, project: str, kind: str | None, depth: int, predicate: str | None,
              limit: int, as_json: bool) -> None:  # fmt: skip
    """Entities related to ENTITY, most supported first (depth 1) or nearest first."""
    with _lake() as lake:
        found = lake.project(project, create=False).entities.neighbors(
            entity, kind=kind, depth=depth, predicate=predicate, limit=limit
        )
    if as_json:
        _dump([n.__dict__ for n in found])
        return
    print_table(None, ["depth", "kind", "name", "predicate", "support"],
                [(n.depth, n.kind, n.name, n.predicate, n.support if n.depth == 1 else "")
                 for n in found])  # fmt: skip


@entities.command()
@click.argument("source")
@click.argument("target")
@PROJECT
@click.option("--max-depth", default=4, show_default=True, type=click.IntRange(1, 6))
@AS_JSON
def path(source: str, target: str, project: str, max_depth: int, as_json: bool) -> None:
    """The shortest path from SOURCE to TARGET."""
    with _lake() as lake:
        found = lake.project(project, create=False).entities.path(
            source, target, max_depth=max_depth
        )
    if as_json:
        _dump(None if found is None else [
            {"id": i, "kind": k, "name": n, "predicate": p} for i, k, n, p in found
        ])  # fmt: skip
        return
    if found is None:
        click.echo(f"no path of at most {max_depth} edges")
        return
    click.echo(" ".join(f"-[{p}]- {k}:{n}" if p else f"{k}:{n}" for _, k, n, p in found))


@entities.command()
@click.argument("source")
@click.argument("into")
@PROJECT
def merge(source: str, into: str, project: str) -> None:
    """Merge entity SOURCE into INTO (its name becomes an alias)."""
    with _lake() as lake:
        info = lake.project(project, create=False).entities.merge(source, into)
    click.echo(f"merged into {info.kind} {info.name}: aliases {', '.join(info.aliases)}")


@entities.command()
@click.argument("entity")
@click.argument("name")
@PROJECT
@KIND
def rename(entity: str, name: str, project: str, kind: str | None) -> None:
    """Give ENTITY the canonical name NAME (the old one stays an alias)."""
    with _lake() as lake:
        info = lake.project(project, create=False).entities.rename(entity, name, kind=kind)
    click.echo(f"{info.kind} {info.name} (also {', '.join(info.aliases)})")


@click.command()
@click.argument("node")
@click.option("--project", required=True)
@click.option("--descendants", is_flag=True, help="What came from NODE instead of its sources.")
@click.option("--kind", type=click.Choice(["generation", "run", "dataset_version"]))
@click.option("--max-depth", default=10, show_default=True, type=click.IntRange(1, 100))
@AS_JSON
def lineage(node: str, project: str, descendants: bool, kind: str | None, max_depth: int,
            as_json: bool) -> None:  # fmt: skip
    """Ancestors (or descendants) of a generation, run or dataset version id."""
    with _lake() as lake:
        found = lake.project(project, create=False).lineage(
            node, direction="descendants" if descendants else "ancestors", kind=kind,
            max_depth=max_depth,
        )  # fmt: skip
    if as_json:
        _dump([n.to_dict() for n in found])
        return
    print_table(None, ["depth", "kind", "id", "relation", "via"],
                [(n.depth, n.kind, n.id, n.relation, n.via) for n in found])  # fmt: skip
