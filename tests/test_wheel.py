"""promptlake installed from a wheel migrates a database: the migrations ship inside it.

The wheel is built from a copy of the files a build sees (so nothing of the checkout, such
as ``.git`` or the editable install, can help), then unpacked and imported with the
checkout out of reach (``python -I -S``, dependencies from this environment's
site-packages only), and ``promptlake init`` brings an empty database to head.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from promptlake.db import migrate

REPO = Path(__file__).resolve().parents[1]
ALEMBIC = REPO / "alembic"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("platform", "alembic"):
        shutil.copytree(REPO / name, tree / name, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(tree)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    [path] = out.glob("promptlake-*.whl")
    return path


def test_wheel_holds_every_migration_byte_for_byte(wheel: Path) -> None:
    revisions = sorted(p.name for p in (ALEMBIC / "versions").glob("*.py"))
    assert len(revisions) >= 7
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        shipped = sorted(
            n.rsplit("/", 1)[1] for n in names if n.startswith("promptlake/migrations/versions/")
        )
        assert shipped == revisions
        for rel in ("env.py", "script.py.mako", *(f"versions/{r}" for r in revisions)):
            assert z.read(f"promptlake/migrations/{rel}") == (ALEMBIC / rel).read_bytes(), rel
    assert not any(n.startswith("alembic/") for n in names)  # never a top-level "alembic"


def test_installed_wheel_migrates_an_empty_database(
    wheel: Path, empty_database_url: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    script = (
        "import sys; sys.path[:0] = sys.argv[1:]; sys.argv = ['promptlake', 'init'];"
        "import promptlake, promptlake.db.migrate as m;"
        "print('package:', promptlake.__file__); print('migrations:', m.ALEMBIC_DIR);"
        "from promptlake.cli import main; main()"
    )
    env = {**os.environ, "PROMPTLAKE_DATABASE_URL": empty_database_url}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(site), *sorted(dependencies)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"package: {site / 'promptlake' / '__init__.py'}" in done.stdout
    assert f"migrations: {site / 'promptlake' / 'migrations'}" in done.stdout
    assert f"schema revision: {migrate.head_revision()}" in done.stdout


def test_a_checkout_migrates_from_alembic() -> None:
    """In the source tree (editable install) the one copy in git is used."""
    assert migrate.ALEMBIC_DIR == ALEMBIC
    assert not (REPO / "platform" / "promptlake" / "migrations").exists()
