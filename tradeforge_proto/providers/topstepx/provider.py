"""The TopStepX provider: the generic ``Provider`` interface over the gateway's endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

import attrs

from ...config import ProfileSettings
from ...core.errors import ConfigurationError
from ...core.interfaces import HubSpec, Provider
from ...core.models import (
    Account,
    AccountId,
    Bar,
    BarRequest,
    Contract,
    ContractId,
    Fill,
    Order,
    OrderId,
    OrderModification,
    OrderPage,
    OrderQuery,
    OrderRequest,
    Position,
)
from ...core.operations import Operation
from ...core.secret import Secret
from . import rest
from .environments import TOPSTEPX, Environment, environment
from .hubs import hubs_for
from .symbols import active_contract

NAME: Final = "topstepx"


@attrs.frozen
class TopStepX:
    """Operations for one TopStepX (or other ProjectX firm) login.

    It is also the session's authenticator: ``login()`` uses the API key, ``refresh()`` the
    gateway's validate endpoint. Brackets and trailing stops stay refused unless allowed here.
    """

    username: str | None = None
    api_key: Secret | None = None
    environment: Environment = TOPSTEPX
    allow_brackets: bool = False
    allow_trailing_stop: bool = False

    @property
    def name(self) -> str:
        """Short provider name."""
        return NAME

    @property
    def api_url(self) -> str:
        """The environment's REST base URL."""
        return self.environment.api_url

    @property
    def environment_name(self) -> str:
        """The environment's name."""
        return self.environment.name

    @property
    def simulator(self) -> bool:
        """True for the embedded simulator."""
        return self.environment.simulator

    @classmethod
    def from_settings(
        cls, profile: ProfileSettings, *, simulator_url: str | None = None
    ) -> TopStepX:
        """Build from a settings profile; ``simulator_url`` serves the SIM environment."""
        if profile.provider != NAME:
            raise ConfigurationError(f"profile {profile.name} is for provider {profile.provider!r}")
        env = _environment_of(profile, simulator_url)
        return cls(
            username=profile.username,
            api_key=profile.api_key,
            environment=env,
            allow_brackets=profile.enable_brackets,
            allow_trailing_stop=profile.enable_trailing_stop,
        )

    @classmethod
    def for_simulator(cls, api_url: str, username: str, api_key: str) -> TopStepX:
        """The embedded simulator at ``api_url``; it models brackets and trailing stops."""
        return cls(
            username=username,
            api_key=Secret(api_key),
            environment=Environment.local(api_url),
            allow_brackets=True,
            allow_trailing_stop=True,
        )

    # --- auth ---

    def login(self) -> Operation[Secret]:
        """Auth/loginKey with the configured username and API key."""
        if not self.username or self.api_key is None or not self.api_key:
            raise ConfigurationError("TopStepX needs a username and an API key to log in")
        return rest.login_key(self.username, self.api_key)

    def refresh(self) -> Operation[Secret] | None:
        """Auth/validate."""
        return rest.validate()

    def logout(self) -> Operation[None]:
        """Auth/logout."""
        return rest.logout()

    # --- reads ---

    def get_accounts(self, only_active: bool = True) -> Operation[list[Account]]:
        """Account/search."""
        return rest.search_accounts(only_active)

    def search_contracts(self, text: str, *, live: bool = False) -> Operation[list[Contract]]:
        """Contract/search."""
        return rest.search_contracts(text, live=live)

    def get_contract(self, contract_id: ContractId) -> Operation[Contract]:
        """Contract/searchById."""
        return rest.get_contract(contract_id)

    def get_available_contracts(self, *, live: bool = False) -> Operation[list[Contract]]:
        """Contract/available."""
        return rest.available_contracts(live=live)

    def retrieve_bars(self, request: BarRequest) -> Operation[list[Bar]]:
        """History/retrieveBars."""
        return rest.retrieve_bars(request)

    def search_orders(
        self, account_id: AccountId, start: datetime, end: datetime | None = None
    ) -> Operation[list[Order]]:
        """Order/search."""
        return rest.search_orders(account_id, start, end)

    def get_open_orders(self, account_id: AccountId) -> Operation[list[Order]]:
        """Order/searchOpen."""
        return rest.search_open_orders(account_id)

    def get_order(self, account_id: AccountId, order_id: OrderId) -> Operation[Order]:
        """Order/searchById."""
        return rest.get_order(account_id, order_id)

    def query_orders(self, query: OrderQuery) -> Operation[OrderPage]:
        """Order/v2/query."""
        return rest.query_orders(query)

    def get_open_positions(self, account_id: AccountId) -> Operation[list[Position]]:
        """Position/searchOpen."""
        return rest.search_open_positions(account_id)

    def search_trades(
        self, account_id: AccountId, start: datetime, end: datetime | None = None
    ) -> Operation[list[Fill]]:
        """Trade/search."""
        return rest.search_trades(account_id, start, end)

    def ping(self) -> Operation[str]:
        """Status/ping."""
        return rest.ping()

    def active_contract(self, contracts: Sequence[Contract], symbol: str) -> Contract | None:
        """The front contract of a product symbol, the way TopStepX names them."""
        return active_contract(contracts, symbol)

    # --- realtime ---

    def hubs(self) -> tuple[HubSpec, ...]:
        """The user and market hubs of this environment, with fresh decode state."""
        return hubs_for(self.environment.user_hub_url, self.environment.market_hub_url)

    # --- writes (never retried) ---

    def place_order(self, request: OrderRequest) -> Operation[OrderId]:
        """Order/place, with this provider's feature opt-ins."""
        return rest.place_order(
            request,
            allow_brackets=self.allow_brackets,
            allow_trailing_stop=self.allow_trailing_stop,
        )

    def cancel_order(self, account_id: AccountId, order_id: OrderId) -> Operation[None]:
        """Order/cancel."""
        return rest.cancel_order(account_id, order_id)

    def modify_order(self, change: OrderModification) -> Operation[None]:
        """Order/modify."""
        return rest.modify_order(change, allow_trailing_stop=self.allow_trailing_stop)

    def close_position(self, account_id: AccountId, contract_id: ContractId) -> Operation[None]:
        """Position/closeContract."""
        return rest.close_position(account_id, contract_id)

    def partial_close_position(
        self, account_id: AccountId, contract_id: ContractId, size: int
    ) -> Operation[None]:
        """Position/partialCloseContract."""
        return rest.partial_close_position(account_id, contract_id, size)


def _environment_of(profile: ProfileSettings, simulator_url: str | None) -> Environment:
    if profile.uses_simulator:
        base = profile.api_url or simulator_url
        if base is None:
            raise ConfigurationError("the SIM environment needs the simulator's URL")
        env = Environment.local(base)
    elif profile.api_url is not None:
        env = Environment(
            name=profile.environment,
            api_url=profile.api_url.rstrip("/"),
            user_hub_url=profile.user_hub_url or f"{profile.api_url.rstrip('/')}/hubs/user",
            market_hub_url=profile.market_hub_url or f"{profile.api_url.rstrip('/')}/hubs/market",
        )
    else:
        env = environment(profile.environment)
    return attrs.evolve(
        env,
        user_hub_url=profile.user_hub_url or env.user_hub_url,
        market_hub_url=profile.market_hub_url or env.market_hub_url,
    )


if TYPE_CHECKING:  # mypy proves that TopStepX implements the generic Provider interface
    _CONFORMS: Provider = TopStepX()
