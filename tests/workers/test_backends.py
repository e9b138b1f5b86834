"""workers.backends: the one place embedded or scaled is decided."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.backends import Backend, Mode, S3Bucket, choose_backend
from workers.dispatch.celery_app import make_celery
from workers.dispatch.coordination import FileCoordination
from workers.engine import Engine
from workers.errors import InsufficientStorage
from workers.outputs.storage_budget import check_free_space
from workers.settings import Settings
from workers.store import LocalStore, make_store
from workers.store.s3 import S3Store
from workers.tenancy.usage import FileUsage

REDIS = "redis://:secret@127.0.0.1:6379/0"
S3 = "http://127.0.0.1:8333"


def test_no_broker_and_no_s3_is_the_embedded_default(tmp_path: Path) -> None:
    backend = choose_backend(Settings(data_dir=tmp_path))
    assert backend.mode is Mode.EMBEDDED
    assert not backend.scaled
    assert backend.redis_url == ""
    assert not backend.objects_in_s3
    assert backend.data_dir == tmp_path


def test_a_broker_alone_scales_shared_state_and_keeps_objects_local() -> None:
    backend = choose_backend(Settings(broker_url=REDIS))
    assert backend.scaled
    assert backend.redis_url == REDIS
    assert not backend.objects_in_s3


def test_s3_alone_scales_objects_and_keeps_shared_state_in_files() -> None:
    backend = choose_backend(Settings(s3_endpoint=S3))
    assert backend.scaled
    assert backend.redis_url == ""
    assert backend.objects_in_s3


def test_both_is_the_scaled_mode() -> None:
    backend = choose_backend(Settings(broker_url=REDIS, s3_endpoint=S3))
    assert backend.mode is Mode.SCALED
    assert backend.redis_url == REDIS
    assert backend.objects_in_s3


def test_the_repr_shows_no_broker_password() -> None:
    assert "secret" not in repr(choose_backend(Settings(broker_url=REDIS)))


# Handed, not chosen: every maker builds from the Backend it is given and reads no setting to
# decide. Each test hands a Backend that contradicts the settings, so a maker that chose again
# from the settings would give the other kind.

BUCKET = S3Bucket(
    endpoint=S3,
    bucket="handed-bucket",
    access_key="AKIA-handed",
    secret_key="s3cret-handed",
    region="eu-west-1",
    public_url="",
)


def test_the_store_is_made_from_the_handed_backend(tmp_path: Path) -> None:
    local = make_store(Backend(Mode.EMBEDDED, "", None, tmp_path / "handed"))
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path / "handed" / "store"
    s3 = make_store(Backend(Mode.SCALED, "", BUCKET, tmp_path))
    assert isinstance(s3, S3Store)
    assert (s3.endpoint, s3.bucket, s3.region) == (S3, "handed-bucket", "eu-west-1")


def test_choose_backend_carries_the_s3_bucket_and_hides_its_keys(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        s3_endpoint=S3,
        s3_bucket="b",
        s3_access_key="AKIA-secret",
        s3_secret_key="secret",
        s3_public_url="https://objects.example",
    )
    backend = choose_backend(settings)
    assert backend.s3 == S3Bucket(
        S3, "b", "AKIA-secret", "secret", "us-east-1", "https://objects.example"
    )
    assert "secret" not in repr(backend)
    assert "secret" not in repr(backend.s3)
    assert choose_backend(Settings(data_dir=tmp_path)).s3 is None


def test_the_task_queue_uses_the_handed_backend(tmp_path: Path) -> None:
    embedded_settings = Settings(data_dir=tmp_path)
    scaled = Backend(Mode.SCALED, REDIS, None, tmp_path)
    app = make_celery(embedded_settings, scaled)
    assert app.shared is scaled
    assert app.conf.broker_url == REDIS
    scaled_settings = Settings(data_dir=tmp_path, broker_url=REDIS)
    files = make_celery(scaled_settings, choose_backend(embedded_settings))
    assert files.conf.broker_url.startswith("filesystem://")


def test_the_engine_makes_its_connections_from_the_handed_backend(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url=REDIS)
    embedded = choose_backend(Settings(data_dir=tmp_path))
    engine = Engine(settings, embedded, make_store(embedded))
    assert isinstance(engine.coordination, FileCoordination)
    assert isinstance(engine.usage, FileUsage)
    assert engine.queue.backend is embedded


def test_free_space_is_checked_where_the_handed_backend_keeps_objects(tmp_path: Path) -> None:
    with pytest.raises(InsufficientStorage):
        check_free_space(Backend(Mode.EMBEDDED, "", None, tmp_path), 1 << 62)
    check_free_space(Backend(Mode.SCALED, "", BUCKET, tmp_path), 1 << 62)  # S3: nothing to check
