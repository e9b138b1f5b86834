"""Shared fixtures: settings on a temp data dir, a local store, the app and its client."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from factory import create_app
from workers.settings import Settings
from workers.store import LocalStore

# Session fixtures for real servers: `s3_server` (SeaweedFS) and `redis_server`;
# `reference_release` (the reference release built once, tests/reference_release.py);
# `live_factory` and `web_factory` (real `image-factory serve`s on that release,
# tests/factory/live.py).
pytest_plugins = ["tests.services", "tests.reference_release", "tests.factory.live"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> LocalStore:
    return LocalStore(settings.data_dir / "store")


@pytest.fixture
def app(settings: Settings, store: LocalStore) -> Flask:
    return create_app(settings, store=store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
