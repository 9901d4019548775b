"""The registry picks the provider of a profile, so runtimes never name one."""

from __future__ import annotations

import pytest

from tradeforge_proto.config import ProfileSettings
from tradeforge_proto.core.errors import ConfigurationError
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.providers.topstepx import TopStepX
from tradeforge_proto.registry import provider_for, simulator_provider


def test_a_topstepx_profile_gets_the_topstepx_provider_with_its_settings() -> None:
    profile = ProfileSettings(
        "TS", environment="DEMO", username="me", api_key=Secret("k"), enable_brackets=True
    )
    provider = provider_for(profile)
    assert isinstance(provider, TopStepX)
    assert provider.username == "me"
    assert provider.allow_brackets
    assert provider.environment_name == "demo"
    assert not provider.simulator
    assert provider.api_url.startswith("https://")
    assert {hub.name for hub in provider.hubs()} == {"user", "market"}


def test_an_unknown_provider_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown provider 'acme'"):
        provider_for(ProfileSettings("ACME", provider="acme"))


def test_the_simulator_provider_points_every_url_at_the_simulator() -> None:
    provider = simulator_provider("http://127.0.0.1:8123", "trader", "key")
    assert provider.simulator
    assert provider.api_url == "http://127.0.0.1:8123"
    assert {hub.url for hub in provider.hubs()} == {
        "http://127.0.0.1:8123/hubs/user",
        "http://127.0.0.1:8123/hubs/market",
    }
