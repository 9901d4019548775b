"""Load settings from the process environment and a ``.env`` file; the core parses both."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tradeforge_proto.config import Settings


def load_settings(
    env_file: str | Path | None = ".env", environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from ``env_file`` (when it exists) overlaid by the environment, which wins."""
    text = None if env_file is None or not Path(env_file).is_file() else Path(env_file).read_text()
    return Settings.from_sources(os.environ if environ is None else environ, text)
