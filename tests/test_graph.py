"""The entity graph: extraction into the tables, incremental runs, resolution and hand
corrections, PII kept out, neighbours and paths against a hand-built graph, lineage."""

from __future__ import annotations

import uuid

import pytest

import promptlake
from promptlake import NotFoundError, PermissionDeniedError, ValidationError

SUPPORT = (
    "Hi, I'm Dana Whitfield from Northwind Traders. Our Acme Cloud dashboard at"
    " https://console.acme.io/billing shows a 502. Contact bob@example.com please."
)
CODE = (
    "Run `pip install requests` first.\nimport pandas as pd\n"
    "Then call load_config() and read docs.python.org for details."
)


def _names(found) -> set[tuple[str, str]]:
    return {(e.kind, e.name) for e in found}


def test_extract_resolve_incremental_and_cascade(project, dbq) -> None:
    project.entities.set_dictionary({"product": {"Acme Cloud": ["AcmeCloud", "acme-cloud"]}})
    g1 = project.log(prompt=SUPPORT, output="Sorry Dana Whitfield, AcmeCloud is back up.")
    g2 = project.log(prompt="How do I parse CSV?", output=CODE)
    report = project.entities.extract()
    assert report.generations == 2 and report.mentions > 0
    found = _names(project.entities(limit=100))
    assert ("product", "Acme Cloud") in found
    assert ("name", "Dana Whitfield") in found
    assert ("name", "Northwind Traders") in found
    assert ("url", "https://console.acme.io/billing") in found
    assert ("package", "requests") in found and ("package", "pandas") in found
    assert ("code", "load_config") in found and ("domain", "docs.python.org") in found
    # the default policy pseudonymized the address at ingest: the pseudonym is the entity
    emails = project.entities("email")
    assert len(emails) == 1 and emails[0].name.startswith("<EMAIL_")
    assert "bob@example.com" not in str(dbq("SELECT * FROM entities")[1])
    # AcmeCloud (the dictionary alias) and "Acme Cloud" are one entity with two mentions
    acme = project.entities.get("acme cloud")
    assert acme.mentions == 2 and acme.generations == 1
    # nothing new: nothing read
    assert project.entities.extract().generations == 0
    # neighbours: same-sentence co-mentions
    near = {n.name for n in project.entities.neighbors("Acme Cloud")}
    assert "https://console.acme.io/billing" in near
    # deleting a generation takes its mentions; pruning drops the entities only it named
    dbq("DELETE FROM generations WHERE id = :g", {"g": g2.id})
    assert project.entities.extract().pruned_entities == 4  # requests, pandas, load_config, docs
    assert ("package", "requests") not in _names(project.entities(limit=100))
    _, rows = dbq("SELECT count(*) FROM entity_mentions WHERE generation_id = :g", {"g": g2.id})
    assert rows == [(0,)]
    assert g1.id
