"""What a report records about where it ran: machine, Python, the TensorFlow wheel, the
consumers' environment variables and thread settings, the toolchain, each consumer's own
record (binding, TF version, peak RSS, wall time)."""

from __future__ import annotations

import os
import platform
from typing import Any

from .. import __version__
from ..consumers import ALL_CONSUMERS, Consumer
from .settings import RunSettings


def environment_record(settings: RunSettings, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from ..tfenv import find_tensorflow

    tf = find_tensorflow()
    return {
        "tfinterop": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "tensorflow": {
            "version": tf.version,
            "distribution": tf.distribution,
            "library_dir": tf.library_dir,
        },
        "consumer_environment": settings.environment,
        "threads": {"intra_op": settings.threads[0], "inter_op": settings.threads[1]},
        "toolchain": toolchain_record(),
        "consumers": runs,
        "sandbox": settings.sandbox.as_dict(),
    }


def toolchain_record(consumers: tuple[Consumer, ...] = ALL_CONSUMERS) -> dict[str, str | None]:
    """What built the consumers (compiler versions, the locked crate version): each consumer
    declares its own toolchain."""
    record: dict[str, str | None] = {}
    for consumer in consumers:
        record.update(consumer.toolchain())
    return record
