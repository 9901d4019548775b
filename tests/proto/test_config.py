"""Settings from environment mappings: the seed's TS_* names, profiles side by side, no leaks."""

from __future__ import annotations

import pytest

from tradeforge_proto.config import RateSetting, Settings
from tradeforge_proto.core.errors import ConfigurationError
from tradeforge_proto.providers.topstepx import DEMO, TOPSTEPX, TopStepX, environment

SEED = {
    "TS_USERNAME": "jdoe",
    "TS_API_KEY": "k3y-very-secret-value",
    "TS_ENVIRONMENT": "DEMO",
    "TS_CAPTURE_ACCOUNT_ID": "20258288",
}


def test_seed_variables_make_the_default_profile():
    profile = Settings.from_env(SEED).profile()
    assert profile.name == "TS"
    assert profile.username == "jdoe"
    assert profile.api_key is not None
    assert profile.api_key.reveal() == "k3y-very-secret-value"
    assert profile.environment == "demo"
    assert profile.default_account_id == 20258288
    assert profile.has_credentials
    assert not profile.enable_brackets
    assert not profile.enable_trailing_stop
    assert profile.rate_limit == RateSetting(200, 60.0)
    assert profile.history_rate_limit == RateSetting(50, 30.0)


def test_secrets_never_show_in_repr_or_str():
    settings = Settings.from_env(SEED)
    for text in (repr(settings), str(settings), repr(settings.profile())):
        assert "k3y-very-secret-value" not in text
    provider = TopStepX.from_settings(settings.profile())
    assert "k3y-very-secret-value" not in repr(provider)
    assert "k3y-very-secret-value" not in repr(provider.login())
    assert "k3y-very-secret-value" not in repr(provider.login().request)


def test_no_credentials_is_a_valid_configuration():
    profile = Settings.from_env({}).profile()
    assert not profile.has_credentials
    assert profile.environment == "topstepx"
    with pytest.raises(ConfigurationError, match="username and an API key"):
        TopStepX.from_settings(profile).login()


def test_several_profiles_side_by_side():
    env = {
        **SEED,
        "TRADEFORGE_PROFILES": "ts, bulenox",
        "TRADEFORGE_PROFILE": "BULENOX",
        "BULENOX_USERNAME": "other",
        "BULENOX_API_KEY": "k2",
        "BULENOX_ENVIRONMENT": "bulenox",
        "BULENOX_ENABLE_BRACKETS": "yes",
        "BULENOX_RATE_LIMIT": "100/60",
    }
    settings = Settings.from_env(env)
    assert settings.profile().name == "BULENOX"
    assert settings.profile("ts").username == "jdoe"
    bulenox = TopStepX.from_settings(settings.profile())
    assert bulenox.environment.api_url == "https://api.bulenox.projectx.com"
    assert bulenox.environment.market_hub_url == "https://rtc.bulenox.projectx.com/hubs/market"
    assert bulenox.allow_brackets
    assert settings.profile().rate_limit == RateSetting(100, 60.0)
    assert TopStepX.from_settings(settings.profile("TS")).environment == DEMO
    with pytest.raises(ConfigurationError, match="no profile"):
        settings.profile("nope")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TS_CAPTURE_ACCOUNT_ID": "abc"}, "numeric account id"),
        ({"TS_ENABLE_BRACKETS": "maybe"}, "true or false"),
        ({"TS_RATE_LIMIT": "lots"}, "200/60"),
        ({"TS_HISTORY_RATE_LIMIT": "0/30"}, "200/60"),
        ({"TS_TOKEN_REFRESH_MARGIN": "-5"}, "seconds"),
        ({"TS_TOKEN_REFRESH_MARGIN": "soon"}, "seconds"),
        ({"TRADEFORGE_PROFILES": " , "}, "no profile"),
        ({"TRADEFORGE_PROFILE": "X"}, "not in TRADEFORGE_PROFILES"),
    ],
)
def test_bad_values_give_clear_errors(env, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_environment_names():
    assert environment("LIVE") is TOPSTEPX
    assert environment(" TopstepX ") is TOPSTEPX
    assert environment("e8x").api_url == "https://api.e8.projectx.com"
    assert DEMO.user_hub_url == "https://gateway-rtc-demo.s2f.projectx.com/hubs/user"
    with pytest.raises(ConfigurationError, match="unknown environment"):
        environment("moon")


def test_explicit_urls_and_simulator():
    env = {"TS_ENVIRONMENT": "SIM", "TS_USERNAME": "u", "TS_API_KEY": "k"}
    profile = Settings.from_env(env).profile()
    assert profile.uses_simulator
    with pytest.raises(ConfigurationError, match="simulator's URL"):
        TopStepX.from_settings(profile)
    sim = TopStepX.from_settings(profile, simulator_url="http://127.0.0.1:8123/")
    assert sim.environment.simulator
    assert sim.environment.api_url == "http://127.0.0.1:8123"
    assert sim.environment.user_hub_url == "http://127.0.0.1:8123/hubs/user"

    custom = Settings.from_env(
        {"TS_API_URL": "https://gw.example/", "TS_MARKET_HUB_URL": "wss://rt.example/hubs/market"}
    ).profile()
    provider = TopStepX.from_settings(custom)
    assert provider.environment.api_url == "https://gw.example"
    assert provider.environment.user_hub_url == "https://gw.example/hubs/user"
    assert provider.environment.market_hub_url == "wss://rt.example/hubs/market"
    with pytest.raises(ConfigurationError, match="provider"):
        TopStepX.from_settings(Settings.from_env({"TS_PROVIDER": "other"}).profile())


def test_profile_budgets_and_the_simulator_provider():
    from tradeforge_proto.core.operations import RateBucket
    from tradeforge_proto.limits import RateBudget

    profile = Settings.from_env(
        {"TS_RATE_LIMIT": "100/60", "TS_HISTORY_RATE_LIMIT": "30/30"}
    ).profile()
    assert profile.budgets == {
        RateBucket.GENERAL: RateBudget(100, 60.0),
        RateBucket.HISTORY: RateBudget(30, 30.0),
    }
    sim = TopStepX.for_simulator("http://127.0.0.1:8123/", "trader", "key-9")
    assert sim.environment.simulator
    assert sim.environment.market_hub_url == "http://127.0.0.1:8123/hubs/market"
    assert sim.login().request.body == b'{"userName":"trader","apiKey":"key-9"}'
    assert "key-9" not in repr(sim)
