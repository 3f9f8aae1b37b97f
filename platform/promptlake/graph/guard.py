"""Entities never carry PII the project's policy removes.

Text anonymized at ingest holds pseudonyms (``<EMAIL_7f3a9c>``) or nothing in place of
the values, and those pseudonyms are what the graph records. But stored text can still
hold raw values: under a policy applied at export only, under ``keep`` for some types,
or in rows logged before a policy existed. So every text is checked with the built-in
PII detector before its mentions are kept: a mention that overlaps a detected value is

- kept as it is when the policy keeps that type (``keep``, or the type not named),
- recorded under the value's pseudonym (surface and name alike) when the policy
  pseudonymizes it and the mention covers the value (an e-mail address),
- dropped otherwise (redact, mask, drop, or a mention that only partly covers the value).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..privacy.detect import PatternDetector
from ..privacy.operators import pseudonym
from .extract import Mention

if TYPE_CHECKING:
    from ..client import Project


class PiiGuard:
    def __init__(self, operators: dict[str, str], key: bytes | None) -> None:
        self.operators = operators
        self.key = key
        self.detector = PatternDetector()

    @classmethod
    def for_project(cls, project: Project) -> PiiGuard:
        from ..privacy import keys
        from ..privacy.policy import current

        policy = current(project)
        needs_key = "pseudonymize" in policy.operators.values()
        key = keys.derive(project.lake.master_key(), "pseudonym", project.id) if needs_key else None
        return cls(dict(policy.operators), key)

    def _operator(self, entity_type: str) -> str:
        return self.operators.get(entity_type, self.operators.get("*", "keep"))

    def filter(self, text: str, mentions: list[Mention]) -> list[Mention]:
        if not mentions:
            return mentions
        findings = self.detector.detect(text)
        if not findings:
            return mentions
        out = []
        for m in mentions:
            hit = next((f for f in findings if f.start < m.end and m.start < f.end), None)
            if hit is None:
                out.append(m)
                continue
            op = self._operator(hit.entity_type)
            if op == "keep":
                out.append(m)
            elif (
                op == "pseudonymize"
                and self.key is not None
                and m.start <= hit.start
                and hit.end <= m.end
                and m.kind == "email"
            ):
                alias = pseudonym(hit.entity_type, text[hit.start : hit.end], self.key)
                out.append(replace(m, surface=alias, name=alias))
        return out
