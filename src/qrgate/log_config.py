"""Logging of a running server (``qrgate serve``): uvicorn's own configuration, plus
qrgate's loggers on stderr and the access log (``qrgate.access``, one JSON object per
line) on stdout, where a log shipper can take it as it is."""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG


def server_log_config(*, level: str) -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["line"] = {"format": "%(message)s"}
    config["handlers"]["qrgate_access"] = {
        "formatter": "line", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    config["loggers"]["qrgate"] = {"handlers": ["default"], "level": level.upper(),
                                   "propagate": False}
    # Always at INFO: QRGATE_ACCESS_LOG alone turns it on or off.
    config["loggers"]["qrgate.access"] = {"handlers": ["qrgate_access"], "level": "INFO",
                                          "propagate": False}
    return config
