"""The web side's publisher: has a build worker publish (and sign) an installer tag.

The web service holds no private key, so after building a tag's installers through the
workers it sends `publish_installer` (`workers.registry.publish_task`) and waits for it,
bounded by `IMAGE_FACTORY_BUILD_WAIT`. Publishing from stored builds takes seconds, so it is
queued ahead of every build (the top priority). A worker lost mid-publish leaves the
waiter's answer a 503 to retry; the retried pull sends it again (publishing is
deterministic, so a late duplicate writes the same bytes).
"""

from __future__ import annotations

import time
import uuid
from functools import cached_property

from workers.backends import Backend
from workers.dispatch import celery_app as celery_side
from workers.dispatch.build_queue import PRIORITY_STEPS, broker_errors
from workers.registry.errors import RegistryError, RegistryUnavailable
from workers.registry.names import Repository
from workers.settings import Settings

POLL_SECONDS = 0.2
PUBLISH_TASK = "image_factory.publish_installer"  # run by `workers.registry.publish_task`


class InstallerPublisher:
    """`publisher(repo, version)`: returns once a worker has published the tag."""

    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend

    @cached_property
    def _app(self) -> celery_side.FactoryCelery:
        return celery_side.make_celery(self.settings, self.backend)

    def __call__(self, repo: Repository, version: str) -> None:
        task_id = f"publish-{uuid.uuid4()}"
        with broker_errors():
            self._app.send_task(
                PUBLISH_TASK,
                args=[repo.image, repo.schematic_id, version],
                task_id=task_id,
                queue=celery_side.QUEUE,
                priority=PRIORITY_STEPS[0],
            )
        deadline = time.monotonic() + self.settings.build_wait
        try:
            while time.monotonic() < deadline:
                with broker_errors():
                    state, _, error = celery_side.task_meta(self._app, task_id)
                if state in celery_side.STATE_DONE:
                    return
                if state in celery_side.STATE_FAILED:
                    raise RegistryError(f"publishing {repo.name}:{version} failed: {error}")
                time.sleep(POLL_SECONDS)
        finally:
            with broker_errors():
                self._app.backend.forget(task_id)
        raise RegistryUnavailable("this tag is still being published; retry later")
