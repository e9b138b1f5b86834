"""The Celery task that publishes an installer tag in a build worker (where the key is).

`publish_installer(image, schematic_id, version)` runs `publish.publish_built`: the tag's
installer builds (already stored) become OCI images and an index, signed with the worker's
key. The web service, which holds no private key, sends it (`workers.registry.publishing`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from workers.errors import FactoryError, Unavailable
from workers.registry.errors import RegistryError
from workers.registry.names import parse_repository
from workers.registry.publish import publish_built
from workers.registry.publishing import PUBLISH_TASK
from workers.store import make_store

if TYPE_CHECKING:
    from workers.dispatch.celery_app import FactoryCelery

log = logging.getLogger(__name__)


class PublishFailed(Exception):
    """Publishing ended in an error; the message is meant for the client that pulled."""


def register(app: FactoryCelery) -> None:
    """Register the publish task on `app`."""

    @app.task(name=PUBLISH_TASK, shared=False)
    def publish_installer(image: str, schematic_id: str, version: str) -> None:
        settings = app.settings
        try:
            publish_built(
                make_store(app.shared), settings, parse_repository(image, schematic_id), version
            )
        except Unavailable as error:
            log.warning("publishing %s/%s:%s: %s", image, schematic_id, version, error)
            raise PublishFailed(error.public) from None
        except FactoryError as error:
            raise PublishFailed(str(error)) from None
        except RegistryError as error:
            raise PublishFailed(error.message) from None
        except Exception:
            log.exception("publishing %s/%s:%s failed", image, schematic_id, version)
            unexpected = "publishing failed unexpectedly (the worker log has the details)"
            raise PublishFailed(unexpected) from None
