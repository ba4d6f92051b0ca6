"""Shared fixtures: the real models in engines/ (prepared once), real photos, a tmp state."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from central_support import fresh_postgres

from edge.central.database import Database
from edge.demos.postgres import Postgres, postgres_bin
from edge.models.prepare import prepare_models
from edge.settings import Settings
from edge.vision.loader import VisionModels

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "engines"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No EDGE_* variable of the caller's shell may change what a test sees."""
    for name in list(os.environ):
        if name.startswith("EDGE_") or name == "STATE_DIRECTORY":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    # `make test` prepared them already; this is a no-op then, and a build otherwise.
    prepare_models(MODELS_DIR, progress=lambda _message: None)
    return MODELS_DIR


@pytest.fixture(scope="session")
def settings(models_dir: Path) -> Settings:
    return Settings(models={"dir": models_dir})


@pytest.fixture(scope="session")
def vision_models(settings: Settings) -> Iterator[VisionModels]:
    models = VisionModels.load(settings)
    yield models
    models.close()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, models_dir: Path) -> Path:
    """Environment for in-process CLI runs: real models, a private state directory."""
    state = tmp_path / "state"
    monkeypatch.setenv("EDGE_MODELS__DIR", str(models_dir))
    monkeypatch.setenv("EDGE_STORAGE__STATE_DIR", str(state))
    return state


# --- the collector's databases (tests/test_central*.py) ---------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL's server is not installed (`make test` installs it as root)")
    server = Postgres().start()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same tests on the embedded default and on a real PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'central.db'}"
    else:
        url = fresh_postgres(request.getfixturevalue("postgres_server"))
    db = Database(url)
    db.migrate()
    yield db
    db.close()
