"""workers.backends: the one place embedded or scaled is decided."""

from __future__ import annotations

from pathlib import Path

from workers.backends import Mode, choose_backend
from workers.settings import Settings

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
