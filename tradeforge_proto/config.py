"""Settings from environment variables, provider-agnostic and with several profiles side by side.

This module reads a mapping (``os.environ`` merged with a ``.env`` file by the runtime); it does
no I/O itself. The default profile uses the ``TS_`` prefix:

    TS_USERNAME, TS_API_KEY            credentials (the API key is kept in a Secret)
    TS_ENVIRONMENT                     TOPSTEPX (alias LIVE), DEMO, a ProjectX firm name, or SIM
    TS_CAPTURE_ACCOUNT_ID              default account (alias TS_ACCOUNT_ID)
    TS_PROVIDER                        topstepx (the only provider so far)
    TS_API_URL, TS_USER_HUB_URL, TS_MARKET_HUB_URL   explicit endpoints (override the environment)
    TS_ENABLE_BRACKETS, TS_ENABLE_TRAILING_STOP      opt-ins for features the gateway gets wrong
    TS_TOKEN_REFRESH_MARGIN            seconds before token expiry to refresh (default 3600)
    TS_RATE_LIMIT, TS_HISTORY_RATE_LIMIT             "requests/seconds" (default 200/60, 50/30)

More profiles: ``TRADEFORGE_PROFILES=TS,BULENOX`` reads the same names with each prefix;
``TRADEFORGE_PROFILE`` picks the default one (else the first).
"""

from __future__ import annotations

import difflib
import enum
import io
from collections.abc import Mapping
from typing import Final

import attrs
from dotenv import dotenv_values

from .core.errors import ConfigurationError
from .core.operations import RateBucket
from .core.secret import Secret
from .limits import RateBudget

DEFAULT_PREFIX: Final = "TS"
SETTING_NAMES: Final = (
    "USERNAME",
    "API_KEY",
    "ENVIRONMENT",
    "CAPTURE_ACCOUNT_ID",
    "ACCOUNT_ID",
    "PROVIDER",
    "API_URL",
    "USER_HUB_URL",
    "MARKET_HUB_URL",
    "ENABLE_BRACKETS",
    "ENABLE_TRAILING_STOP",
    "TOKEN_REFRESH_MARGIN",
    "RATE_LIMIT",
    "HISTORY_RATE_LIMIT",
)
"""Every setting a profile reads, after its prefix (``TS_USERNAME``...)."""
_LOOKALIKE: Final = 0.75  # how close an unknown name must be to a setting to count as a misspelling


class Backend(enum.Enum):
    """Where a profile trades."""

    LIVE = "live"
    """The provider, with the profile's credentials."""
    SIMULATOR = "simulator"
    """The simulator, chosen with ``<PREFIX>_ENVIRONMENT=SIM`` (at ``API_URL``, else in-process)."""
    EMBEDDED = "embedded"
    """Nothing configured at all: an in-process simulator, which the caller announces."""


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


@attrs.frozen
class RateSetting:
    """A request budget: ``limit`` requests per ``window`` seconds."""

    limit: int
    window: float

    @classmethod
    def parse(cls, text: str, *, name: str) -> RateSetting:
        """Read "200/60" style budgets."""
        count, sep, seconds = text.partition("/")
        try:
            setting = cls(int(count), float(seconds))
        except ValueError:
            setting = None
        if not sep or setting is None or setting.limit <= 0 or setting.window <= 0:
            raise ConfigurationError(f"{name} must look like 200/60 (requests/seconds): {text!r}")
        return setting


@attrs.frozen
class ProfileSettings:
    """Everything needed to reach one provider account set; secrets never show in repr."""

    name: str
    provider: str = "topstepx"
    environment: str = "topstepx"
    username: str | None = None
    api_key: Secret | None = None
    default_account_id: int | None = None
    api_url: str | None = None
    user_hub_url: str | None = None
    market_hub_url: str | None = None
    enable_brackets: bool = False
    enable_trailing_stop: bool = False
    token_refresh_margin: float = 3600.0
    rate_limit: RateSetting = RateSetting(200, 60.0)
    history_rate_limit: RateSetting = RateSetting(50, 30.0)
    environment_given: bool = False
    """True when the environment was set rather than defaulted."""
    misspelt: tuple[tuple[str, str], ...] = ()
    """Variables with the prefix that name no setting but nearly do, each with that setting."""

    def backend(self) -> Backend:
        """Where this profile trades; ``ConfigurationError`` naming what is missing when the
        settings are incomplete, so that they never quietly mean paper trading."""
        if self.uses_simulator:
            return Backend.SIMULATOR
        prefix = self.name
        guesses = "; ".join(f"{name} is not a setting: {meant}?" for name, meant in self.misspelt)
        hint = f" ({guesses})" if guesses else ""
        if self.username and not self.api_key:
            raise ConfigurationError(
                f"{prefix}_USERNAME is set but {prefix}_API_KEY is not{hint}. Set it to trade on "
                f"{self.environment.upper()}, or set {prefix}_ENVIRONMENT=SIM for the simulator"
            )
        if self.api_key and not self.username:
            raise ConfigurationError(
                f"{prefix}_API_KEY is set but {prefix}_USERNAME is not{hint}. Set it to trade on "
                f"{self.environment.upper()}, or set {prefix}_ENVIRONMENT=SIM for the simulator"
            )
        if self.has_credentials:
            return Backend.LIVE
        if self.environment_given or self.api_url or self.misspelt:
            wanted = f"{prefix}_ENVIRONMENT={self.environment.upper()}"
            if not self.environment_given:
                wanted = f"{prefix}_API_URL" if self.api_url else "a live profile"
            raise ConfigurationError(
                f"{wanted} needs {prefix}_USERNAME and {prefix}_API_KEY{hint}. "
                f"Set both to trade, or {prefix}_ENVIRONMENT=SIM for the simulator"
            )
        return Backend.EMBEDDED

    def in_process_simulator(self) -> bool:
        """True when ``connect()`` and ``serve`` must start a simulator of their own: nothing is
        configured, or the simulator is chosen without its URL. Raises like ``backend``."""
        backend = self.backend()
        return backend is Backend.EMBEDDED or (
            backend is Backend.SIMULATOR and self.api_url is None
        )

    @property
    def has_credentials(self) -> bool:
        """True when both a username and an API key are configured."""
        return bool(self.username) and self.api_key is not None and bool(self.api_key)

    @property
    def budgets(self) -> dict[RateBucket, RateBudget]:
        """The client-side rate budgets of this profile, for the rate limiter."""
        return {
            RateBucket.GENERAL: RateBudget(self.rate_limit.limit, self.rate_limit.window),
            RateBucket.HISTORY: RateBudget(
                self.history_rate_limit.limit, self.history_rate_limit.window
            ),
        }

    @property
    def uses_simulator(self) -> bool:
        """True when this profile targets the embedded simulator."""
        return self.environment in {"sim", "simulator"}


@attrs.frozen
class Settings:
    """All configured profiles and which one is the default."""

    profiles: Mapping[str, ProfileSettings]
    default: str

    def profile(self, name: str | None = None) -> ProfileSettings:
        """The named profile (case-insensitive), or the default one."""
        key = (name or self.default).upper()
        try:
            return self.profiles[key]
        except KeyError:
            known = ", ".join(self.profiles)
            raise ConfigurationError(f"no profile {name!r}; configured: {known}") from None

    @classmethod
    def from_sources(cls, environ: Mapping[str, str], env_text: str | None = None) -> Settings:
        """Settings from the text of a ``.env`` file overlaid by ``environ``, which wins."""
        values: dict[str, str] = {}
        if env_text is not None:
            parsed = dotenv_values(stream=io.StringIO(env_text))
            values.update({key: value for key, value in parsed.items() if value is not None})
        values.update(environ)
        return cls.from_env(values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read every profile from an environment mapping."""
        names = [
            n.strip().upper()
            for n in environ.get("TRADEFORGE_PROFILES", DEFAULT_PREFIX).split(",")
            if n.strip()
        ]
        if not names:
            raise ConfigurationError("TRADEFORGE_PROFILES names no profile")
        profiles = {name: _profile(name, environ) for name in names}
        default = environ.get("TRADEFORGE_PROFILE", names[0]).strip().upper()
        if default not in profiles:
            raise ConfigurationError(
                f"TRADEFORGE_PROFILE {default!r} is not in TRADEFORGE_PROFILES"
            )
        return cls(profiles=profiles, default=default)


def _misspelt(prefix: str, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables with ``prefix`` that name no setting but nearly do, with the setting."""
    found: list[tuple[str, str]] = []
    for name in sorted(environ):
        head, _, suffix = name.partition("_")
        if head != prefix or not suffix or suffix in SETTING_NAMES:
            continue
        close = difflib.get_close_matches(suffix, SETTING_NAMES, n=1, cutoff=_LOOKALIKE)
        if close:
            found.append((name, f"{prefix}_{close[0]}"))
    return tuple(found)


def _flag(environ: Mapping[str, str], key: str) -> bool:
    value = environ.get(key, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{key} must be true or false, got {value!r}")


def _optional(environ: Mapping[str, str], key: str) -> str | None:
    value = environ.get(key, "").strip()
    return value or None


def _profile(prefix: str, environ: Mapping[str, str]) -> ProfileSettings:
    def key(suffix: str) -> str:
        return f"{prefix}_{suffix}"

    account_text = _optional(environ, key("CAPTURE_ACCOUNT_ID")) or _optional(
        environ, key("ACCOUNT_ID")
    )
    try:
        account = int(account_text) if account_text else None
    except ValueError:
        raise ConfigurationError(
            f"{key('CAPTURE_ACCOUNT_ID')} must be a numeric account id, got {account_text!r}"
        ) from None
    margin_text = _optional(environ, key("TOKEN_REFRESH_MARGIN")) or "3600"
    try:
        margin = float(margin_text)
    except ValueError:
        margin = -1.0
    if not 0 <= margin < 24 * 3600:
        raise ConfigurationError(f"{key('TOKEN_REFRESH_MARGIN')} must be seconds below 86400")
    api_key = _optional(environ, key("API_KEY"))
    environment_text = _optional(environ, key("ENVIRONMENT"))
    rate = _optional(environ, key("RATE_LIMIT"))
    history = _optional(environ, key("HISTORY_RATE_LIMIT"))
    return ProfileSettings(
        name=prefix,
        provider=(_optional(environ, key("PROVIDER")) or "topstepx").lower(),
        environment=(environment_text or "topstepx").lower(),
        environment_given=environment_text is not None,
        misspelt=_misspelt(prefix, environ),
        username=_optional(environ, key("USERNAME")),
        api_key=Secret(api_key) if api_key else None,
        default_account_id=account,
        api_url=_optional(environ, key("API_URL")),
        user_hub_url=_optional(environ, key("USER_HUB_URL")),
        market_hub_url=_optional(environ, key("MARKET_HUB_URL")),
        enable_brackets=_flag(environ, key("ENABLE_BRACKETS")),
        enable_trailing_stop=_flag(environ, key("ENABLE_TRAILING_STOP")),
        token_refresh_margin=margin,
        rate_limit=RateSetting.parse(rate, name=key("RATE_LIMIT"))
        if rate
        else RateSetting(200, 60),
        history_rate_limit=(
            RateSetting.parse(history, name=key("HISTORY_RATE_LIMIT"))
            if history
            else RateSetting(50, 30)
        ),
    )
