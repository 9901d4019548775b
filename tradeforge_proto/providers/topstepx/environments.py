"""Where the ProjectX gateways live: TopstepX, the ProjectX demo gateway and other firms.

TopstepX has no separate sandbox: practice and combine accounts live on the production hosts, and
whether an account is real money is told by the account's ``simulated`` flag, not by the host.
"""

from __future__ import annotations

from typing import Final

import attrs

from ...core.errors import ConfigurationError


@attrs.frozen
class Environment:
    """The three endpoints of one gateway: REST base URL and the two SignalR hubs."""

    name: str
    api_url: str
    user_hub_url: str
    market_hub_url: str
    simulator: bool = False

    @classmethod
    def from_hosts(cls, name: str, api_host: str, rtc_host: str) -> Environment:
        """An environment from its REST host and realtime host (https/wss implied)."""
        return cls(
            name=name,
            api_url=f"https://{api_host}",
            user_hub_url=f"https://{rtc_host}/hubs/user",
            market_hub_url=f"https://{rtc_host}/hubs/market",
        )

    @classmethod
    def local(cls, api_url: str, *, name: str = "simulator") -> Environment:
        """An environment served from one base URL, as the embedded simulator does."""
        base = api_url.rstrip("/")
        return cls(
            name=name,
            api_url=base,
            user_hub_url=f"{base}/hubs/user",
            market_hub_url=f"{base}/hubs/market",
            simulator=True,
        )


TOPSTEPX: Final = Environment.from_hosts("topstepx", "api.topstepx.com", "rtc.topstepx.com")
DEMO: Final = Environment.from_hosts(
    "demo", "gateway-api-demo.s2f.projectx.com", "gateway-rtc-demo.s2f.projectx.com"
)

# Firms on the ProjectX platform follow api.<firm>.projectx.com / rtc.<firm>.projectx.com.
FIRMS: Final = (
    "alphaticks",
    "aquafutures",
    "blueguardianfutures",
    "blusky",
    "bulenox",
    "daytraders",
    "e8",
    "fundingfutures",
    "futureselite",
    "fxifyfutures",
    "goatfundedfutures",
    "holaprime",
    "nexgen",
    "thefuturesdesk",
    "tickticktrader",
    "toponefutures",
    "tx3funding",
)

# Names users write for the same environment.
_ALIASES: Final = {"live": "topstepx", "prod": "topstepx", "production": "topstepx", "e8x": "e8"}

ENVIRONMENTS: Final[dict[str, Environment]] = {
    "topstepx": TOPSTEPX,
    "demo": DEMO,
    **{
        firm: Environment.from_hosts(firm, f"api.{firm}.projectx.com", f"rtc.{firm}.projectx.com")
        for firm in FIRMS
    },
}


def environment(name: str) -> Environment:
    """The environment called ``name`` (case-insensitive; LIVE means TopstepX production)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return ENVIRONMENTS[key]
    except KeyError:
        known = ", ".join(sorted({*ENVIRONMENTS, *_ALIASES}))
        raise ConfigurationError(f"unknown environment {name!r}; known: {known}") from None
