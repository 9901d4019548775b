"""Which provider serves a settings profile: runtimes ask here and never name a provider."""

from __future__ import annotations

from .config import ProfileSettings
from .core.errors import ConfigurationError
from .core.interfaces import Provider
from .providers.topstepx import TopStepX
from .providers.topstepx.provider import NAME as TOPSTEPX

__all__ = ["provider_for", "simulator_provider"]


def provider_for(profile: ProfileSettings) -> Provider:
    """The provider of ``profile``: its environment, credentials and opt-ins."""
    if profile.provider == TOPSTEPX:
        return TopStepX.from_settings(profile)
    raise ConfigurationError(f"profile {profile.name}: unknown provider {profile.provider!r}")


def simulator_provider(api_url: str, username: str, api_key: str) -> Provider:
    """The embedded simulator at ``api_url``, which speaks the TopStepX gateway protocol."""
    return TopStepX.for_simulator(api_url, username, api_key)
