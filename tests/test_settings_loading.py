"""Settings come from a .env file and the environment; the environment wins."""

from __future__ import annotations

import tradeforge_anyio
from tradeforge_sync import load_settings


def test_env_file_then_environment(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        '# TopStepX\nTS_USERNAME="from-file"\nTS_API_KEY=file-key\nTS_ENVIRONMENT=DEMO\n'
    )
    settings = load_settings(env_file, environ={"TS_USERNAME": "from-env"})
    profile = settings.profile()
    assert profile.username == "from-env"
    assert profile.api_key is not None
    assert profile.api_key.reveal() == "file-key"
    assert profile.environment == "demo"
    assert "file-key" not in repr(settings)


def test_missing_file_is_fine_and_both_runtimes_share_the_loader(tmp_path):
    settings = tradeforge_anyio.load_settings(tmp_path / "absent.env", environ={})
    assert not settings.profile().has_credentials
    assert load_settings(None, environ={"TS_USERNAME": "x"}).profile().username == "x"
