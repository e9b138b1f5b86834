"""The build queue with a real worker (a thread on the embedded broker): single flight,
status, failures, recovery of a build whose worker vanished, a full queue, a dead broker."""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from celery.exceptions import TimeLimitExceeded

from schematics import parse_schematic
from tests.workers.build_worker import build_worker
from tests.workers.releases.fakes import save_fake_release
from workers.assembly.run import ToolError
from workers.backends import choose_backend
from workers.dispatch import build_queue as queue_module
from workers.dispatch import celery_app as celery_side
from workers.dispatch.build_queue import DONE, FAILED, QUEUED, BuildQueue
from workers.dispatch.build_request import BuildRequest, submit_claim
from workers.dispatch.coordination import FileCoordination, make_coordination
from workers.dispatch.shared_metrics import make_metrics
from workers.errors import Unavailable
from workers.outputs.schematics_store import save_schematic
from workers.pipeline import build_once as builds_module
from workers.pipeline.build_asset import build_asset
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.settings import Settings
from workers.store import LocalStore, StoreUnavailable
from workers.tenancy.usage import make_usage


@dataclass(frozen=True)
class World:
    settings: Settings
    store: LocalStore
    queue: BuildQueue

    def request(self, marker: str, path: str = "cmdline-metal-amd64") -> BuildRequest:
        body = f"customization:\n  extraKernelArgs: [factory.test={marker}]\n".encode()
        schematic = parse_schematic(body)
        sid = save_schematic(self.store, schematic)
        plan = make_plan(self.store, schematic, sid, "v1.0.0", parse_profile(path), self.settings)
        return BuildRequest.for_plan(sid, plan)

    def builds_started(self) -> str:
        return make_metrics(choose_backend(self.settings)).render({})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("queue")
    settings = Settings(data_dir=root / "data")
    store = LocalStore(settings.data_dir / "store")
    save_fake_release(store, "v1.0.0", root / "release")
    backend = choose_backend(settings)
    queue = BuildQueue(settings, backend, store, make_coordination(backend), make_usage(backend))
    with build_worker(settings):
        yield World(settings, store, queue)


def test_concurrent_submissions_run_one_build(world: World) -> None:
    request = world.request("together")

    def submit_and_wait(_: int) -> str:
        world.queue.submit(request)
        status = world.queue.wait(request, 60)
        assert status.state == DONE
        assert status.built is not None
        return status.built.sha256

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        digests = set(pool.map(submit_and_wait, range(20)))
    assert len(digests) == 1
    assert 'image_factory_builds_total{kind="cmdline"} 1\n' in world.builds_started()
    status = world.queue.status(request.key)
    assert status is not None
    assert status.state == DONE
    assert status.download_url == request.download_url
    assert not world.queue.coordination.held(submit_claim(request.key))


def test_an_unknown_key_has_no_status(world: World) -> None:
    assert world.queue.status("f" * 64) is None


def test_a_failed_build_reports_why_and_is_retried_on_the_next_request(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = world.request("fails-once")

    def failing(*args: object, **kwargs: object) -> Path:
        raise ToolError(["xorriso", "-x"], 2, "no space left")

    monkeypatch.setattr(builds_module, "build_asset", failing)
    world.queue.submit(request)
    failed = world.queue.wait(request, 60)
    assert failed.state == FAILED
    assert failed.error == "a build step failed: xorriso exited with status 2"  # no argv

    monkeypatch.undo()
    assert world.queue.submit(request).state == QUEUED
    assert world.queue.wait(request, 60).state == DONE


def test_a_request_whose_inputs_changed_is_refused(world: World) -> None:
    real = world.request("changed")
    stale = BuildRequest(real.schematic, real.version, real.path, "0" * 64)
    world.queue.submit(stale)
    status = world.queue.wait(stale, 60)
    assert status.state == FAILED
    assert "changed after the build was requested" in status.error


def test_a_build_whose_worker_vanished_is_enqueued_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a killed worker leaves: the build marked running, the submit claim held, but no
    lease (its holder is gone) and nothing in the queue."""
    monkeypatch.setattr(queue_module, "LOST_GRACE", 0.5)
    request = world.request("orphan")
    app = celery_side.make_celery(world.settings, choose_backend(world.settings))
    app.backend.store_result(request.key, {**request.to_json(), "stage": "disk"}, "PROGRESS")
    assert world.queue.coordination.claim(submit_claim(request.key), 600)

    status = world.queue.wait(request, 60)

    assert status.state == DONE


def test_a_full_queue_refuses_new_builds(world: World, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_queue=0)
    backend = choose_backend(settings)
    queue = BuildQueue(
        settings,
        backend,
        world.store,
        FileCoordination(tmp_path / "coordination"),
        make_usage(backend),
    )
    request = world.request("full")
    with pytest.raises(Unavailable, match="the build queue is full"):
        queue.submit(request)
    assert not queue.coordination.held(submit_claim(request.key))


def test_a_dead_broker_is_unavailable(world: World, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", broker_url="redis://127.0.0.1:9/0")
    backend = choose_backend(settings)
    queue = BuildQueue(
        settings,
        backend,
        world.store,
        FileCoordination(tmp_path / "coordination"),
        make_usage(backend),
    )
    with pytest.raises(Unavailable, match="unavailable"):
        queue.submit(world.request("dead-broker"))


def test_a_build_stopped_at_the_hard_limit_can_be_requested_again(world: World) -> None:
    """A build killed at the hard time limit is recorded as failed while its submit claim is
    still held (its worker process never got to give it back)."""
    request = world.request("hard-limit")
    app = celery_side.make_celery(world.settings, choose_backend(world.settings))
    app.backend.mark_as_failure(request.key, TimeLimitExceeded(3600))
    assert world.queue.coordination.claim(submit_claim(request.key), 600)
    failed = world.queue.status(request.key)
    assert failed is not None
    assert failed.error == "the build ran past the hard time limit and was stopped"

    assert world.queue.submit(request).state == QUEUED
    assert world.queue.wait(request, 60).state == DONE


def test_an_unreachable_store_is_retried_not_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = world.request("store-blip")
    attempts: list[str] = []

    def once_unavailable(*args: Any, **kwargs: Any) -> Path:
        attempts.append("try")
        if len(attempts) == 1:
            raise StoreUnavailable("S3 endpoint unreachable")
        path: Path = build_asset(*args, **kwargs)
        return path

    monkeypatch.setattr(builds_module, "build_asset", once_unavailable)
    world.queue.submit(request)
    seen = [status.stage for status in world.queue.watch(request, 60)]

    assert "retrying" in seen
    assert world.queue.status(request.key) is not None
    final = world.queue.wait(request, 1)
    assert final.state == DONE
    assert attempts == ["try", "try"]


def test_embedded_broker_keeps_its_control_files_in_the_data_dir(tmp_path: Path) -> None:
    # kombu's filesystem transport defaults to ./control, relative to the process's cwd.
    settings = Settings(data_dir=tmp_path / "data")
    options = celery_side.make_celery(
        settings, choose_backend(settings)
    ).conf.broker_transport_options
    assert Path(options["control_folder"]).is_relative_to(tmp_path / "data")


def test_old_build_states_expire_in_the_embedded_default(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = celery_side.make_celery(settings, choose_backend(settings))
    for key in ("old", "recent"):
        app.backend.store_result(key, {"stage": "done"}, "SUCCESS")
    results = celery_side.celery_dirs(settings)["results"]
    stale = time.time() - celery_side.RESULT_EXPIRES - 60
    os.utime(results / "celery-task-meta-old", (stale, stale))

    celery_side.expire_results(app)

    assert celery_side.task_meta(app, "old")[0] == "PENDING"  # unknown again
    assert celery_side.task_meta(app, "recent")[0] == "SUCCESS"
    assert sorted(p.name for p in results.iterdir()) == ["celery-task-meta-recent"]


def _embedded_channel(settings: Settings) -> Any:
    connection = celery_side.make_celery(settings, choose_backend(settings)).connection_for_write()
    channel = connection.default_channel
    assert isinstance(channel, celery_side.AtomicFilesChannel)
    return channel


def test_embedded_broker_never_shows_a_partial_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    channel = _embedded_channel(settings)
    queue_dir = celery_side.celery_dirs(settings)["queue"]
    seen_before_rename: list[list[str]] = []
    rename = os.replace

    def look_then_rename(src: str, dst: str) -> None:
        # The moment before the message gets its name: a consumer finds nothing to take.
        seen_before_rename.append(sorted(os.listdir(queue_dir)))
        with pytest.raises(Empty):
            channel._get(celery_side.QUEUE)
        rename(src, dst)

    monkeypatch.setattr(os, "replace", look_then_rename)
    channel._put(celery_side.QUEUE, {"body": "build me"})
    monkeypatch.undo()

    assert len(seen_before_rename) == 1
    assert [name.endswith(".builds.msg.part") for name in seen_before_rename[0]] == [True]
    assert channel._get(celery_side.QUEUE) == {"body": "build me"}
    with pytest.raises(Empty):
        channel._get(celery_side.QUEUE)
    assert os.listdir(queue_dir) == []
    assert os.listdir(celery_side.celery_dirs(settings)["processed"]) == []


def test_embedded_broker_delivers_every_message_once_to_racing_consumers(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    sent = [f"m{n}" for n in range(400)]

    def produce(names: list[str]) -> None:
        channel = _embedded_channel(settings)
        for name in names:
            channel._put(celery_side.QUEUE, {"body": name})

    def consume(deadline: float) -> list[str]:
        channel = _embedded_channel(settings)
        got: list[str] = []
        while time.monotonic() < deadline:
            try:
                got.append(channel._get(celery_side.QUEUE)["body"])
            except Empty:
                time.sleep(0.001)
        return got

    deadline = time.monotonic() + 8
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        consumers = [pool.submit(consume, deadline) for _ in range(3)]
        producers = [pool.submit(produce, sent[i::2]) for i in range(2)]
        for producer in producers:
            producer.result()
        received = [name for consumer in consumers for name in consumer.result()]

    assert sorted(received) == sorted(sent)  # each exactly once, none empty or lost
