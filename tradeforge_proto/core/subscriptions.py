"""What a realtime stream can be subscribed to, independent of any provider."""

from __future__ import annotations

import enum

import attrs

from .errors import LocalProtocolError
from .models import AccountId, ContractId


class Channel(enum.Enum):
    """A kind of realtime data: user channels are keyed by account, market ones by contract."""

    ACCOUNTS = "accounts"
    ORDERS = "orders"
    POSITIONS = "positions"
    FILLS = "fills"
    QUOTES = "quotes"
    TRADES = "trades"
    DEPTH = "depth"

    @property
    def is_market(self) -> bool:
        """True for market-data channels (quotes, trades, depth)."""
        return self in _MARKET


_MARKET = frozenset({Channel.QUOTES, Channel.TRADES, Channel.DEPTH})


@attrs.frozen
class Subscription:
    """One channel for one account or contract (``ACCOUNTS`` covers every account: key None)."""

    channel: Channel
    key: AccountId | ContractId | None = None

    def __attrs_post_init__(self) -> None:
        if self.channel is Channel.ACCOUNTS:
            if self.key is not None:
                raise LocalProtocolError("the accounts channel covers every account: key is None")
        elif self.channel.is_market:
            if not isinstance(self.key, str) or not self.key:
                raise LocalProtocolError(f"{self.channel.value} needs a contract id")
        elif isinstance(self.key, bool) or not isinstance(self.key, int):
            raise LocalProtocolError(f"{self.channel.value} needs an integer account id")

    @property
    def is_market(self) -> bool:
        """True for market-data subscriptions."""
        return self.channel.is_market

    @classmethod
    def quotes(cls, contract_id: ContractId) -> Subscription:
        """Best bid/ask and session statistics of a contract."""
        return cls(Channel.QUOTES, contract_id)

    @classmethod
    def trades(cls, contract_id: ContractId) -> Subscription:
        """Trade prints of a contract."""
        return cls(Channel.TRADES, contract_id)

    @classmethod
    def depth(cls, contract_id: ContractId) -> Subscription:
        """Market depth (DOM) of a contract."""
        return cls(Channel.DEPTH, contract_id)

    @classmethod
    def accounts(cls) -> Subscription:
        """Balance and status changes of every account."""
        return cls(Channel.ACCOUNTS)

    @classmethod
    def orders(cls, account_id: AccountId) -> Subscription:
        """Order updates of an account."""
        return cls(Channel.ORDERS, account_id)

    @classmethod
    def positions(cls, account_id: AccountId) -> Subscription:
        """Position updates of an account."""
        return cls(Channel.POSITIONS, account_id)

    @classmethod
    def fills(cls, account_id: AccountId) -> Subscription:
        """Executions (half-turn trades) of an account."""
        return cls(Channel.FILLS, account_id)

    @classmethod
    def market(
        cls,
        contract_id: ContractId,
        *,
        quotes: bool = False,
        trades: bool = False,
        depth: bool = False,
    ) -> list[Subscription]:
        """Exactly the market subscriptions asked for: quotes, trade prints, depth."""
        wanted = ((quotes, cls.quotes), (trades, cls.trades), (depth, cls.depth))
        subs = [make(contract_id) for flag, make in wanted if flag]
        if not subs:
            raise LocalProtocolError("ask for quotes=True, trades=True or depth=True")
        return subs

    @classmethod
    def user(
        cls,
        account_id: AccountId,
        *,
        accounts: bool = True,
        orders: bool = True,
        positions: bool = True,
        fills: bool = True,
    ) -> list[Subscription]:
        """The user subscriptions for an account, as flags."""
        subs = [cls.accounts()] if accounts else []
        wanted = ((orders, cls.orders), (positions, cls.positions), (fills, cls.fills))
        return subs + [make(account_id) for flag, make in wanted if flag]
