"""Build step that ships the migrations inside the package.

The migrations live once, in git, in the repository's top-level ``alembic/`` (``env.py``,
``script.py.mako``, ``versions/``), where developers run ``alembic`` from the repository
root. An installed package has no repository root, so building a wheel copies those files
to ``promptlake/migrations/`` in the wheel, where :mod:`promptlake.db.migrate` finds them.
The sdist carries ``alembic/`` too, so a wheel built from it holds them as well.

Only setuptools uses this module (``[tool.setuptools] cmdclass`` in ``pyproject.toml``
loads it by path, before promptlake's dependencies exist): it imports nothing of
promptlake, and nothing at run time imports it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools.command.build_py import build_py

PATTERNS = ("env.py", "script.py.mako", "versions/*.py")
"""The files of ``alembic/`` that make the migration environment, relative to it."""


def migration_files(alembic_dir: Path) -> list[Path]:
    """The migration files under ``alembic_dir``, relative to it, sorted."""
    found = {p.relative_to(alembic_dir) for pattern in PATTERNS for p in alembic_dir.glob(pattern)}
    return sorted(found)


class BuildPy(build_py):
    """``build_py`` that also copies ``alembic/`` to ``promptlake/migrations/``."""

    def _alembic_dir(self) -> Path:
        return Path(os.path.abspath("alembic"))  # setuptools builds in the project root

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads alembic/ in the checkout itself
        source = self._alembic_dir()
        files = migration_files(source)
        if not any(f.parts[0] == "versions" for f in files):
            raise RuntimeError(f"no migrations under {source}: the wheel would not migrate")
        target = Path(self.build_lib) / "promptlake" / "migrations"
        shutil.rmtree(target, ignore_errors=True)  # a reused build/ keeps no stale revision
        for rel in files:
            self.mkpath(str((target / rel).parent))
            self.copy_file(str(source / rel), str(target / rel))

    def get_source_files(self) -> list[str]:
        """What the sdist must hold: the package's files and the migrations."""
        files = migration_files(self._alembic_dir())
        extra = [os.path.join("alembic", *rel.parts) for rel in files]
        return [*super().get_source_files(), *extra]

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        if getattr(self, "editable_mode", False):
            return super().get_outputs(include_bytecode)
        target = Path(self.build_lib) / "promptlake" / "migrations"
        copied = [str(target / rel) for rel in migration_files(self._alembic_dir())]
        return [*super().get_outputs(include_bytecode), *copied]
