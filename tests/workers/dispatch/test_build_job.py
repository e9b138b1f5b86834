"""Build failures are counted by a reason from a fixed set, never by their message."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from workers.assembly.run import ToolError
from workers.dispatch.build_job import failure_reason
from workers.errors import InvalidRequest
from workers.store import StoreUnavailable


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (StoreUnavailable("S3 put s3://bucket/key failed"), "store_unavailable"),
        (InvalidRequest("unknown extension factory/nope"), "refused"),
        (ToolError(["mkfs.xfs", "/tmp/x"], 1, "no space"), "tool_failed"),
        (SoftTimeLimitExceeded(), "time_limit"),
        (RuntimeError("anything else"), "internal"),
    ],
)
def test_failure_reason(error: BaseException, reason: str) -> None:
    assert failure_reason(error) == reason
