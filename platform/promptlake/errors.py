"""One exception tree for everything promptlake raises.

Callers catch :class:`PromptLakeError` for any failure of ours; the subclasses say what kind
of failure it is. Database errors are translated at the boundary (see ``db.engine``) so that
messages say what was wrong and what to do, not which driver raised.
"""

from __future__ import annotations

from dataclasses import dataclass


class PromptLakeError(Exception):
    """Base class of every error promptlake raises."""


class ConfigurationError(PromptLakeError):
    """A setting (environment variable or argument) is missing or invalid."""


class DatabaseError(PromptLakeError):
    """The database refused an operation or could not be reached."""


class DatabaseUnavailableError(DatabaseError):
    """The database could not be reached, or the connection broke; retrying may succeed."""


class IngestInterruptedError(DatabaseUnavailableError):
    """A writer could not store its records within its retry budget and kept them in a
    journal file instead; ``promptlake replay`` stores them later."""

    def __init__(self, message: str, journal: str, records: int) -> None:
        super().__init__(message)
        self.journal = journal
        self.records = records


class SearchIndexError(DatabaseError):
    """Generations were stored, but indexing them for search (beside a writer with
    ``index=True``) failed; ``promptlake embed`` fills in what is missing."""


class PermissionDeniedError(DatabaseError):
    """The database's access rules (grants, row-level security) refused the operation."""


class NotFoundError(PromptLakeError):
    """A named object (project, prompt, label, generation) does not exist."""


@dataclass(frozen=True)
class Problem:
    """One reason a record was rejected: where it is, which field, and why."""

    field: str
    reason: str
    item: str | None = None

    def __str__(self) -> str:
        where = f"{self.item}: " if self.item else ""
        return f"{where}{self.field}: {self.reason}"


class ValidationError(PromptLakeError, ValueError):
    """A record was rejected before anything was written.

    ``problems`` lists every field that was wrong, so a caller can fix them all at once.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @property
    def field(self) -> str:
        return self.problems[0].field if self.problems else ""


__all__ = [
    "ConfigurationError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "IngestInterruptedError",
    "NotFoundError",
    "PermissionDeniedError",
    "Problem",
    "PromptLakeError",
    "ValidationError",
]
