"""promptlake: the system of record for generative-AI data, on PostgreSQL.

import promptlake
lake = promptlake.connect()
proj = lake.project("support-bot")
with proj.session(end_user_id="u-42") as s:
    g = s.log(prompt="Hi", output="Hello!", model="gpt-4o")
proj.score(g, "helpfulness", 0.8, source="human")
"""

from .client import Lake, Project, Session, connect
from .errors import (
    ConfigurationError,
    DatabaseError,
    DatabaseUnavailableError,
    IngestInterruptedError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    PromptLakeError,
    SearchIndexError,
    ValidationError,
)
from .generation import Generation
from .ingest.background import BackgroundLogger, LoggerClosedError
from .ingest.writer import Rejection, Writer
from .prompts import PromptVersion
from .scores import Score

__version__ = "0.1.0"


def instrument(client: object, project: object, **options: object) -> object:
    """Log every chat-completions and responses call of an ``openai`` client (or of every
    client, given the ``openai`` module) into ``project`` (a Project, Session or
    ``proj.logger()``); see :func:`promptlake.instrumentation.instrument`."""
    from .instrumentation import instrument as _instrument

    return _instrument(client, project, **options)


__all__ = [
    "BackgroundLogger",
    "ConfigurationError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "Generation",
    "IngestInterruptedError",
    "Lake",
    "LoggerClosedError",
    "NotFoundError",
    "PermissionDeniedError",
    "Problem",
    "Project",
    "PromptLakeError",
    "PromptVersion",
    "Rejection",
    "Score",
    "SearchIndexError",
    "Session",
    "ValidationError",
    "Writer",
    "__version__",
    "connect",
    "instrument",
]
