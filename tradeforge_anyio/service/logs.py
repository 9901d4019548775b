"""How ``tradeforge serve`` writes its log: text for a terminal, or one JSON object per line.

Audit lines (``tradeforge.audit``) carry their entry's fields, which the JSON form writes out as
they are, so a log shipper can index account, order id and outcome without parsing the text.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Final, Literal

import orjson

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, and an audit entry's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        audit = getattr(record, "audit", None)
        if isinstance(audit, dict):
            line["audit"] = audit
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, form: LogFormat) -> None:
    """Send the ``tradeforge`` loggers to stderr at ``level``, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    logger = logging.getLogger("tradeforge")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
