"""A paper exchange with the ProjectX Gateway's order, position and trade semantics.

Pure and deterministic: the clock is passed in as ``now`` (UNIX seconds), market data arrives
through ``set_market``, and every change is queued as a user-hub event in the order the live gateway
sends them (``drain_events``). Failures raise ``Rejection`` carrying the endpoint's own error code.

Liquidity model: when ``set_market`` is given the book's ``depth``, orders trade against those
levels and sizes; without it each side of the touch holds its quoted size, and every level behind it
one tick worse holds the same size again. Executions use up that liquidity until the next
``set_market``, one execution per level. Market orders and triggered stops walk through as many
levels as they need, and a crossing limit order as many as its limit allows (the rest rests). A
market order that exhausts a finite book fills in part and the rest is cancelled, as an
immediate-or-cancel order would be: the gateway does not document what it does there.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Final

import attrs

from tradeforge_proto.core.enums import OrderSide, OrderStatus, OrderType, PositionSide
from tradeforge_proto.core.models import Account, Bracket, Contract, Fill, Order, Position
from tradeforge_proto.providers.topstepx.codes import (
    AccountSearchErrorCode,
    CancelOrderErrorCode,
    ClosePositionErrorCode,
    ModifyOrderErrorCode,
    PartialClosePositionErrorCode,
    PlaceOrderErrorCode,
    SearchOrderByIdErrorCode,
)
from tradeforge_proto.rules import (
    CHICAGO,
    DAY_TURN,
    OUTSIDE_HOURS,
    AccountRules,
    AccountState,
    AccountStatus,
    ProposedOrder,
    Rule,
    TradingCalendar,
    working_exposure,
)
from tradeforge_proto.rules import Fill as RuleFill
from tradeforge_proto.rules import trading_day as rules_trading_day

from .accountrules import RuleKeeper, needs_cancel, needs_flatten, refusal_message
from .contracts import ContractSpec

__all__ = [
    "FIRST_FILL_ID",
    "FIRST_ORDER_ID",
    "FIRST_POSITION_ID",
    "MAX_CUSTOM_TAG",
    "MAX_ORDER_SIZE",
    "MAX_PRICE",
    "MAX_TRAIL_TICKS",
    "MIN_STOP_LOSS_TICKS",
    "POSITION_BRACKETS_MESSAGE",
    "Changes",
    "Counters",
    "Exchange",
    "OrderRecord",
    "PositionRecord",
    "Rejection",
    "SavedState",
    "SimAccount",
    "UserEvent",
    "UserEventKind",
]

FIRST_ORDER_ID: Final = 2_934_000_000
FIRST_FILL_ID: Final = 2_555_000_000
FIRST_POSITION_ID: Final = 412_000_000
MAX_TRAIL_TICKS: Final = 1000
MAX_PRICE: Final = Decimal(10) ** 9  # prices at or past it are refused as invalid
MAX_ORDER_SIZE: Final = 1000  # contracts in one order; a market order walks a level per fill
MAX_CUSTOM_TAG: Final = 1024  # characters; a longer tag is refused
MIN_STOP_LOSS_TICKS: Final = 4
POSITION_BRACKETS_MESSAGE: Final = (
    "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets."
)

_PLACEABLE: Final = frozenset(
    {
        OrderType.LIMIT,
        OrderType.MARKET,
        OrderType.STOP,
        OrderType.TRAILING_STOP,
        OrderType.JOIN_BID,
        OrderType.JOIN_ASK,
    }
)
_LIMIT_TYPES: Final = frozenset({OrderType.LIMIT, OrderType.JOIN_BID, OrderType.JOIN_ASK})
_STOP_TYPES: Final = frozenset({OrderType.STOP, OrderType.TRAILING_STOP})
_STOP_ONLY: Final = frozenset({OrderType.STOP})
_ARITHMETIC: Final = Context(prec=28)
_NOT_TRADING: Final = "Account is not allowed to trade."
_REVIEW_PASSES: Final = 3  # a review's flatten fills are judged again, at most this often
_FLATTEN_RETRY: Final = 1.0  # seconds between flatten attempts at the flatten time

Execution = tuple[Decimal, int]
Ladder = Sequence[tuple[Decimal, int]]


class UserEventKind(enum.Enum):
    """Which user-hub event a change produces; the value is the hub's event name."""

    ACCOUNT = "GatewayUserAccount"
    ORDER = "GatewayUserOrder"
    POSITION = "GatewayUserPosition"
    TRADE = "GatewayUserTrade"


@attrs.frozen
class UserEvent:
    """One user-hub event: the entity's full current state and the envelope's ``action``."""

    account_id: int
    kind: UserEventKind
    entity: Account | Order | Position | Fill
    action: int


class Rejection(Exception):
    """A refused request: the endpoint's error ``code``, its message and any order it created."""

    def __init__(self, code: int, message: str | None, order_id: int | None = None) -> None:
        self.code = code
        self.message = message
        self.order_id = order_id
        super().__init__(code, message, order_id)

    def __str__(self) -> str:
        text = f"error code {int(self.code)}"
        if self.message:
            text += f": {self.message}"
        if self.order_id is not None:
            text += f" (order {self.order_id})"
        return text


@attrs.define
class SimAccount:
    """A simulated account; ``auto_oco_brackets`` chooses the bracket mode (False: Position)."""

    id: int
    name: str
    balance: Decimal
    can_trade: bool = True
    is_visible: bool = True
    simulated: bool = True
    auto_oco_brackets: bool = False
    rules: AccountRules | None = None
    """The firm's rules the account is held to; ``None`` for a practice account without any."""

    def snapshot(self) -> Account:
        """The account as the gateway reports it."""
        return Account(
            id=self.id,
            name=self.name,
            balance=self.balance,
            can_trade=self.can_trade,
            is_visible=self.is_visible,
            simulated=self.simulated,
        )


def _timestamp(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def _to_decimal(value: Fraction) -> Decimal:
    return _ARITHMETIC.divide(Decimal(value.numerator), Decimal(value.denominator))


def _average(value: Fraction) -> Decimal:
    """An average price as the gateway reports it: to six decimals (exact in a JSON number)."""
    micros = _ARITHMETIC.scaleb(Decimal(round(value * 10**6)), -6)
    whole = micros.to_integral_value()
    return whole if micros == whole else micros.normalize(_ARITHMETIC)


def _cents(value: Fraction) -> Decimal:
    return _ARITHMETIC.scaleb(Decimal(round(value * 100)), -2)


def _aligned(price: Decimal, tick: Decimal) -> bool:
    """True for a whole number of ticks; False too for a price too large to divide exactly."""
    if not price.is_finite() or abs(price) >= MAX_PRICE:
        return False
    return _ARITHMETIC.remainder(price, tick) == 0


def _checked_price(value: Decimal | None, tick: Decimal, kind: str, code: int) -> Decimal:
    if value is None:
        raise Rejection(code, f"{kind.capitalize()} price not set.")
    if not value.is_finite() or not 0 < value < MAX_PRICE:
        raise Rejection(code, f"Invalid {kind} price specified.")
    if not _aligned(value, tick):
        raise Rejection(code, f"Invalid {kind} price. Price is not aligned to tick size.")
    return value


def _trail_stop(side: OrderSide, last: Decimal, ticks: int, tick: Decimal) -> Decimal:
    offset = tick * ticks
    return last - offset if side is OrderSide.SELL else last + offset


def _check_depth(
    depth: tuple[Ladder, Ladder],
    bid: tuple[Decimal, int],
    ask: tuple[Decimal, int],
    tick: Decimal,
) -> None:
    """Refuse depth that is off the tick grid, unordered, negative or away from the touch."""
    for levels, touch, worse in ((depth[0], bid, -1), (depth[1], ask, 1)):
        if levels and tuple(levels[0]) != touch:
            raise ValueError("each side of the depth must start at its touch")
        prices = [price for price, _ in levels]
        if not all(_aligned(price, tick) for price in prices):
            raise ValueError(f"depth prices must be whole ticks of {tick}")
        if any(size < 0 for _, size in levels):
            raise ValueError("depth sizes must not be negative")
        if any((b - a) * worse <= 0 for a, b in pairwise(prices)):
            raise ValueError("depth levels must get worse away from the touch")


def _day_turn_after(now: float) -> float:
    """The moment (UNIX seconds) the trading day of ``now`` ends."""
    day = rules_trading_day(_timestamp(now))
    return datetime.combine(day, DAY_TURN, tzinfo=CHICAGO).timestamp()


def _unlisted(contract_id: str) -> Contract:
    """A stand-in for a contract the catalogue no longer lists: only its id is known."""
    return Contract(contract_id, contract_id, contract_id, Decimal(1), Decimal(1), active=False)


def _display_name(contract: Contract) -> str:
    parts = contract.id.split(".")
    return "".join(parts[-2:]) if len(parts) >= 5 else contract.name


def _check_brackets(
    side: OrderSide, stop_loss: Bracket | None, take_profit: Bracket | None
) -> None:
    code = PlaceOrderErrorCode.OrderRejected
    buy = side is OrderSide.BUY
    going = "long" if buy else "short"
    if stop_loss is not None:
        ticks = stop_loss.ticks
        if stop_loss.type not in _STOP_TYPES:
            raise Rejection(code, f"Invalid stop loss order type ({int(stop_loss.type)}).")
        if (ticks >= 0) if buy else (ticks <= 0):
            direction = "less" if buy else "greater"
            raise Rejection(
                code,
                f"Invalid stop loss ticks ({ticks}). "
                f"Ticks should be {direction} than zero when going {going}.",
            )
        if abs(ticks) < MIN_STOP_LOSS_TICKS:
            raise Rejection(
                code,
                f"Invalid stop loss ticks ({ticks}). "
                f"Stop loss tick value should be at least {MIN_STOP_LOSS_TICKS} ticks.",
            )
    if take_profit is not None:
        ticks = take_profit.ticks
        if take_profit.type is not OrderType.LIMIT:
            raise Rejection(code, f"Invalid take profit order type ({int(take_profit.type)}).")
        if (ticks <= 0) if buy else (ticks >= 0):
            direction = "greater" if buy else "less"
            raise Rejection(
                code,
                f"Invalid take profit ticks ({ticks}). "
                f"Ticks should be {direction} than zero when going {going}.",
            )


@attrs.frozen
class _Prices:
    price: Decimal = Decimal(0)
    trail_ticks: int | None = None


@attrs.define
class _Book:
    bid: Decimal
    bid_size: int
    ask: Decimal
    ask_size: int
    last: Decimal | None
    bids: Ladder | None = None
    asks: Ladder | None = None
    bid_taken: int = 0
    ask_taken: int = 0

    def depth(self, side: OrderSide) -> int:
        """Quoted size on the side an order on ``side`` trades against."""
        return self.ask_size if side is OrderSide.BUY else self.bid_size

    def triggered(self, side: OrderSide, stop: Decimal) -> bool:
        """True when a stop on ``side`` at ``stop`` is touched by the quote."""
        if side is OrderSide.BUY:
            return self.ask_size > 0 and self.ask >= stop
        return self.bid_size > 0 and self.bid <= stop

    def ladder(self, side: OrderSide, tick: Decimal) -> Iterator[tuple[Decimal, int]]:
        """What an order on ``side`` can still trade, best first, net of what was taken since the
        last update: the depth given, or else the touch size again at every tick behind it."""
        buy = side is OrderSide.BUY
        taken = self.ask_taken if buy else self.bid_taken
        given = self.asks if buy else self.bids
        if given is not None:
            for price, size in given:
                if taken < size:
                    yield price, size - taken
                taken = max(0, taken - size)
            return
        price, step, size = (
            (self.ask, tick, self.ask_size) if buy else (self.bid, -tick, self.bid_size)
        )
        if size <= 0:
            return
        level, used = divmod(taken, size)
        price += step * level
        yield price, size - used
        while True:
            price += step
            yield price, size

    def take(
        self, side: OrderSide, quantity: int, tick: Decimal, limit: Decimal | None = None
    ) -> list[Execution]:
        """Use up to ``quantity`` level by level, none worse than ``limit``; one entry per level."""
        buy = side is OrderSide.BUY
        executions: list[Execution] = []
        for price, size in self.ladder(side, tick):
            if quantity == 0 or (limit is not None and (price > limit if buy else price < limit)):
                break
            filled = min(quantity, size)
            executions.append((price, filled))
            quantity -= filled
        used = sum(filled for _, filled in executions)
        if buy:
            self.ask_taken += used
        else:
            self.bid_taken += used
        return executions


@attrs.define
class _SimOrder:
    id: int
    account_id: int
    spec: ContractSpec
    type: OrderType
    side: OrderSide
    size: int
    status: OrderStatus
    created_at: float
    updated_at: float
    price: Decimal = Decimal(0)
    trail_ticks: int | None = None
    custom_tag: str | None = None
    stop_loss: Bracket | None = None
    take_profit: Bracket | None = None
    parent_order_id: int | None = None
    linked_order_id: int | None = None
    fill_volume: int = 0
    notional: Decimal = Decimal(0)

    @property
    def remaining(self) -> int:
        """Contracts still to fill."""
        return self.size - self.fill_volume

    @property
    def contract_id(self) -> str:
        """The contract the order is on."""
        return self.spec.contract.id

    def snapshot(self) -> Order:
        """The order as the gateway reports it."""
        contract = self.spec.contract
        filled = None
        if self.fill_volume:
            filled = _average(Fraction(self.notional) / self.fill_volume)
        trail = None if self.trail_ticks is None else contract.tick_size * self.trail_ticks
        return Order(
            id=self.id,
            account_id=self.account_id,
            contract_id=contract.id,
            created_at=_timestamp(self.created_at),
            status=self.status,
            type=self.type,
            side=self.side,
            size=self.size,
            fill_volume=self.fill_volume,
            symbol_id=contract.symbol_id,
            updated_at=_timestamp(self.updated_at),
            limit_price=self.price if self.type in _LIMIT_TYPES else None,
            stop_price=self.price if self.type in _STOP_TYPES else None,
            filled_price=filled,
            custom_tag=self.custom_tag,
            trail_price=trail,
            trail_distance=self.trail_ticks,
            parent_order_id=self.parent_order_id,
            linked_order_id=self.linked_order_id,
        )


@attrs.define
class _SimPosition:
    id: int
    account_id: int
    contract: Contract
    created_at: float
    size: int
    side: PositionSide
    average: Fraction

    def snapshot(self) -> Position:
        """The position as the gateway reports it; a flat one keeps its last side and price."""
        return Position(
            id=self.id,
            account_id=self.account_id,
            contract_id=self.contract.id,
            created_at=_timestamp(self.created_at),
            side=self.side,
            size=abs(self.size),
            average_price=_average(self.average),
            contract_display_name=_display_name(self.contract),
        )


@attrs.frozen
class OrderRecord:
    """An order as it is kept between runs: every field the exchange needs to go on working it."""

    id: int
    account_id: int
    contract_id: str
    type: OrderType
    side: OrderSide
    size: int
    status: OrderStatus
    created_at: float
    updated_at: float
    price: Decimal
    trail_ticks: int | None
    custom_tag: str | None
    stop_loss: Bracket | None
    take_profit: Bracket | None
    parent_order_id: int | None
    linked_order_id: int | None
    fill_volume: int
    notional: Decimal


@attrs.frozen
class PositionRecord:
    """An open position as it is kept between runs, its average price exact."""

    id: int
    account_id: int
    contract: Contract
    created_at: float
    size: int
    side: PositionSide
    average: Fraction


@attrs.frozen
class Counters:
    """The next ids the exchange hands out, so a restarted exchange never reuses one."""

    next_order_id: int
    next_fill_id: int
    next_position_id: int


@attrs.frozen
class SavedState:
    """Everything an exchange is made of, as a store keeps it."""

    accounts: tuple[SimAccount, ...]
    rule_states: Mapping[int, AccountState]
    orders: tuple[OrderRecord, ...]
    positions: tuple[PositionRecord, ...]
    fills: tuple[Fill, ...]
    counters: Counters


@attrs.frozen
class Changes:
    """What changed since the last ``take_changes``: rows to write, positions gone flat."""

    accounts: tuple[SimAccount, ...]
    rule_states: Mapping[int, AccountState]
    orders: tuple[OrderRecord, ...]
    positions: tuple[PositionRecord, ...]
    closed_positions: tuple[tuple[int, str], ...]
    fills: tuple[Fill, ...]
    counters: Counters

    def __bool__(self) -> bool:
        return bool(
            self.accounts
            or self.rule_states
            or self.orders
            or self.positions
            or self.closed_positions
            or self.fills
        )


def _order_record(order: _SimOrder) -> OrderRecord:
    fields = attrs.asdict(order, recurse=False)
    spec = fields.pop("spec")
    return OrderRecord(contract_id=spec.contract.id, **fields)


def _position_record(position: _SimPosition) -> PositionRecord:
    return PositionRecord(**attrs.asdict(position, recurse=False))


class Exchange:
    """A paper exchange: accounts, contracts, market touch, orders, netted positions and fills."""

    def __init__(
        self,
        catalogue: Sequence[ContractSpec],
        accounts: Sequence[SimAccount],
        *,
        now: float,
        rule_states: Mapping[int, AccountState] | None = None,
        calendar: TradingCalendar | None = None,
    ) -> None:
        self._calendar = calendar or TradingCalendar()
        self._flattened: date | None = None
        self._specs = {spec.contract.id: spec for spec in catalogue}
        self._accounts = {account.id: attrs.evolve(account) for account in accounts}
        if len(self._specs) != len(catalogue) or len(self._accounts) != len(accounts):
            raise ValueError("contract ids and account ids must be unique")
        states = dict(rule_states or {})
        for account in accounts:
            rules = account.rules
            fresh = rules is not None and account.id not in states
            if fresh and rules is not None and account.balance != rules.starting_balance:
                raise ValueError(f"account {account.id} must start at its rules' starting balance")
        self._keeper = RuleKeeper(
            {a.id: a.rules for a in accounts if a.rules is not None},
            {spec.contract.id: spec.contract for spec in catalogue},
            now=now,
            states=states,
        )
        self._review_due: set[int] = set()
        self._reviewing = False
        self._next_turn = -math.inf  # the first review turns whatever day is past
        self._next_flatten = -math.inf
        self._clock = now
        self._books: dict[str, _Book] = {}
        self._orders: dict[int, _SimOrder] = {}
        self._working: dict[str, dict[int, _SimOrder]] = {}
        self._positions: dict[tuple[int, str], _SimPosition] = {}
        self._fills: dict[int, list[Fill]] = {account_id: [] for account_id in self._accounts}
        self._tags: dict[int, set[str]] = {account_id: set() for account_id in self._accounts}
        self._events: list[UserEvent] = []
        self._next_order_id = FIRST_ORDER_ID
        self._next_fill_id = FIRST_FILL_ID
        self._next_position_id = FIRST_POSITION_ID
        self._dirty_orders: set[int] = set()
        self._dirty_positions: set[tuple[int, str]] = set()
        self._dirty_accounts: set[int] = set()
        self._new_fills: list[Fill] = []
        self._taken_rule_states = self._keeper.states()

    @classmethod
    def restore(
        cls,
        catalogue: Sequence[ContractSpec],
        saved: SavedState,
        *,
        now: float,
        calendar: TradingCalendar | None = None,
    ) -> Exchange:
        """An exchange as ``saved`` left it. A working order on a contract the catalogue no
        longer lists cannot trade again, so it comes back cancelled."""
        exchange = cls(
            catalogue, saved.accounts, now=now, rule_states=saved.rule_states, calendar=calendar
        )
        for record in saved.orders:
            exchange._restore_order(record, now)
        for held in saved.positions:
            key = (held.account_id, held.contract.id)
            exchange._positions[key] = _SimPosition(**attrs.asdict(held, recurse=False))
        for fill in saved.fills:
            exchange._fills.setdefault(fill.account_id, []).append(fill)
        counters = saved.counters
        exchange._next_order_id = counters.next_order_id
        exchange._next_fill_id = counters.next_fill_id
        exchange._next_position_id = counters.next_position_id
        exchange._events.clear()
        return exchange

    def _restore_order(self, record: OrderRecord, now: float) -> None:
        spec = self._specs.get(record.contract_id)
        if spec is None:
            spec = attrs.evolve(self._any_spec(), contract=_unlisted(record.contract_id))
        fields = attrs.asdict(record, recurse=False)
        del fields["contract_id"]
        order = _SimOrder(spec=spec, **fields)
        self._orders[order.id] = order
        if order.custom_tag is not None:
            self._tags.setdefault(order.account_id, set()).add(order.custom_tag)
        if order.status is OrderStatus.OPEN:
            if record.contract_id in self._specs:
                self._working.setdefault(record.contract_id, {})[order.id] = order
            else:
                self._finish(order, OrderStatus.CANCELLED, now)

    def _any_spec(self) -> ContractSpec:
        return next(iter(self._specs.values()))

    def take_changes(self) -> Changes:
        """Everything changed since the previous call, for a store to write; clears the record."""
        states = self._keeper.states()
        changed_states = {
            account_id: state
            for account_id, state in states.items()
            if self._taken_rule_states.get(account_id) != state
        }
        self._taken_rule_states = states
        positions, closed = [], []
        for key in sorted(self._dirty_positions):
            held = self._positions.get(key)
            if held is None:
                closed.append(key)
            else:
                positions.append(_position_record(held))
        changes = Changes(
            accounts=tuple(
                attrs.evolve(self._accounts[account_id])
                for account_id in sorted(self._dirty_accounts)
            ),
            rule_states=changed_states,
            orders=tuple(_order_record(self._orders[i]) for i in sorted(self._dirty_orders)),
            positions=tuple(positions),
            closed_positions=tuple(closed),
            fills=tuple(self._new_fills),
            counters=Counters(self._next_order_id, self._next_fill_id, self._next_position_id),
        )
        self._dirty_orders.clear()
        self._dirty_positions.clear()
        self._dirty_accounts.clear()
        self._new_fills = []
        return changes

    def saved_state(self) -> SavedState:
        """The whole exchange as a store keeps it."""
        return SavedState(
            accounts=tuple(attrs.evolve(account) for account in self._accounts.values()),
            rule_states=self._keeper.states(),
            orders=tuple(_order_record(order) for order in self._orders.values()),
            positions=tuple(_position_record(p) for p in self._positions.values()),
            fills=tuple(fill for fills in self._fills.values() for fill in fills),
            counters=Counters(self._next_order_id, self._next_fill_id, self._next_position_id),
        )

    @property
    def clock(self) -> float:
        """The ``now`` of the latest call."""
        return self._clock

    def configure_account(
        self,
        account_id: int,
        *,
        can_trade: bool | None = None,
        auto_oco_brackets: bool | None = None,
        now: float,
    ) -> None:
        """Change an account's trading permission or bracket mode; announces the account."""
        self._clock = now
        account = self._accounts.get(account_id)
        if account is None:
            raise ValueError(f"unknown account {account_id}")
        if can_trade is not None:
            account.can_trade = can_trade
        if auto_oco_brackets is not None:
            account.auto_oco_brackets = auto_oco_brackets
        self._emit(account_id, UserEventKind.ACCOUNT, account.snapshot())

    # Market data

    def set_market(
        self,
        contract_id: str,
        *,
        bid: Decimal,
        bid_size: int,
        ask: Decimal,
        ask_size: int,
        last: Decimal | None,
        now: float,
        depth: tuple[Ladder, Ladder] | None = None,
    ) -> None:
        """Set the touch (``last=None`` keeps the previous last), then trail, trigger and fill.

        ``depth`` is the book behind it, (bids, asks) as (price, size) best first, each side
        starting at its touch; orders then walk those levels and a side can run out.
        """
        self._clock = now
        spec = self._specs.get(contract_id)
        if spec is None:
            raise ValueError(f"unknown contract {contract_id!r}")
        tick = spec.contract.tick_size
        prices = (bid, ask) if last is None else (bid, ask, last)
        if not all(_aligned(price, tick) for price in prices):
            raise ValueError(f"prices must be whole ticks of {tick}")
        if bid_size < 0 or ask_size < 0:
            raise ValueError("sizes must not be negative")
        if bid >= ask:
            raise ValueError("the bid must be below the ask")
        if depth is not None:
            _check_depth(depth, (bid, bid_size), (ask, ask_size), tick)
        previous = self._books.get(contract_id)
        if last is None and previous is not None:
            last = previous.last
        bids, asks = (None, None) if depth is None else (tuple(depth[0]), tuple(depth[1]))
        self._books[contract_id] = _Book(bid, bid_size, ask, ask_size, last, bids, asks)
        if last is not None:
            self._trail(contract_id, last, now)
        self._match(contract_id, now)
        self._review_due.update(
            account_id
            for account_id, held in self._positions
            if held == contract_id and account_id in self._keeper
        )
        self._review(now)

    # Orders

    def place(
        self,
        account_id: int,
        contract_id: str,
        type: OrderType,
        side: OrderSide,
        size: int,
        *,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trail_price: Decimal | None = None,
        custom_tag: str | None = None,
        stop_loss: Bracket | None = None,
        take_profit: Bracket | None = None,
        now: float,
    ) -> int:
        """Place an order and return its id; market orders fill (or reject) before returning."""
        self._clock = now
        codes = PlaceOrderErrorCode
        account = self._accounts.get(account_id)
        if account is None:
            raise Rejection(codes.AccountNotFound, "Account not found.")
        self._review(now)
        if not account.can_trade and self._rules_allow_trading(account_id):
            raise Rejection(codes.AccountRejected, _NOT_TRADING)
        spec = self._specs.get(contract_id)
        if spec is None:
            raise Rejection(codes.ContractNotFound, "Contract not found.")
        if not spec.contract.active:
            raise Rejection(codes.ContractNotActive, "Contract is not active.")
        if not 0 < size <= MAX_ORDER_SIZE:
            raise Rejection(codes.OrderRejected, "Invalid order size specified.")
        if type not in _PLACEABLE:
            raise Rejection(codes.OrderRejected, "Invalid order type specified.")
        if side not in (OrderSide.BUY, OrderSide.SELL):
            raise Rejection(codes.OrderRejected, "Invalid order side specified.")
        order_type, order_side = OrderType(type), OrderSide(side)
        self._require_session(account_id, contract_id, order_side, size, now=now)
        prices = self._entry_prices(
            spec,
            order_type,
            order_side,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
        )
        if custom_tag is not None and len(custom_tag) > MAX_CUSTOM_TAG:
            raise Rejection(codes.OrderRejected, "Custom tag is too long.")
        self._judge(account_id, contract_id, order_side, size)
        if custom_tag is not None and custom_tag in self._tags[account_id]:
            raise Rejection(
                codes.OrderRejected, f"Custom tag '{custom_tag}' is already in use on this account."
            )
        brackets = stop_loss is not None or take_profit is not None
        if brackets and not account.auto_oco_brackets:
            order = self._new_order(
                account_id, spec, order_type, order_side, size, prices=prices, now=now
            )
            order.custom_tag = custom_tag
            self._register(order, OrderStatus.PENDING)
            self._finish(order, OrderStatus.REJECTED, now)
            raise Rejection(codes.OrderRejected, POSITION_BRACKETS_MESSAGE, order.id)
        if brackets:
            _check_brackets(order_side, stop_loss, take_profit)
        order = self._new_order(
            account_id, spec, order_type, order_side, size, prices=prices, now=now
        )
        order.custom_tag, order.stop_loss, order.take_profit = custom_tag, stop_loss, take_profit
        if order_type is OrderType.MARKET:
            self._register(order, OrderStatus.PENDING)
            self._fill_market(order, now)
        else:
            self._register(order, OrderStatus.OPEN)
        self._match(contract_id, now)
        self._review(now)
        return order.id

    def cancel(self, account_id: int, order_id: int, *, now: float) -> None:
        """Cancel a working order; a partly filled bracket entry gets children for its fills."""
        self._clock = now
        codes = CancelOrderErrorCode
        if account_id not in self._accounts:
            raise Rejection(codes.AccountNotFound, None)
        order = self._working_order(account_id, order_id, codes.OrderNotFound)
        self._finish(order, OrderStatus.CANCELLED, now)
        self._attach_brackets(order, now)
        self._match(order.spec.contract.id, now)
        self._review(now)

    def modify(
        self,
        account_id: int,
        order_id: int,
        *,
        size: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trail_price: Decimal | None = None,
        now: float,
    ) -> None:
        """Change a working order; omitted fields stay as they are. It may then fill at once."""
        self._clock = now
        codes = ModifyOrderErrorCode
        account = self._accounts.get(account_id)
        if account is None:
            raise Rejection(codes.AccountNotFound, None)
        order = self._working_order(account_id, order_id, codes.OrderNotFound)
        self._review(now)
        if not account.can_trade:
            raise Rejection(codes.AccountRejected, self._not_trading_message(account_id))
        if size is not None and not order.fill_volume < size <= MAX_ORDER_SIZE:
            raise Rejection(codes.Rejected, "Invalid order size specified.")
        if not self._calendar.is_open(_timestamp(now)):
            raise Rejection(codes.Rejected, OUTSIDE_HOURS)
        if size is not None and size > order.size and order.parent_order_id is None:
            increase = size - order.size
            contract_id = order.spec.contract.id
            self._require_session(
                account_id, contract_id, order.side, increase, now=now, code=codes.Rejected
            )
            self._judge(account_id, contract_id, order.side, increase, code=codes.Rejected)
        tick = order.spec.contract.tick_size
        price, ticks = order.price, order.trail_ticks
        for value, kind, allowed in (
            (limit_price, "limit", _LIMIT_TYPES),
            (stop_price, "stop", _STOP_ONLY),
        ):
            if value is None:
                continue
            if order.type not in allowed:
                raise Rejection(codes.Rejected, f"This order type has no {kind} price to modify.")
            price = _checked_price(value, tick, kind, codes.Rejected)
        if trail_price is not None:
            if order.type is not OrderType.TRAILING_STOP:
                raise Rejection(codes.Rejected, "Only trailing stop orders have a trail price.")
            ticks, last = self._trail_distance(
                order.spec, trail_price, codes.Rejected, guarded=False
            )
            price = _trail_stop(order.side, last, ticks, tick)
        order.size = order.size if size is None else size
        order.price, order.trail_ticks, order.updated_at = price, ticks, now
        self._emit_order(order)
        self._match(order.spec.contract.id, now)
        self._review(now)

    # Positions

    def close_position(self, account_id: int, contract_id: str, *, now: float) -> int:
        """Flatten with a market order (returns its id); working SL/TP orders stay working."""
        self._clock = now
        codes = ClosePositionErrorCode
        position = self._open_position(
            account_id,
            contract_id,
            (codes.AccountNotFound, codes.ContractNotFound, codes.ContractNotActive),
            codes.PositionNotFound,
        )
        if not self._calendar.is_open(_timestamp(now)):
            raise Rejection(codes.OrderRejected, None)
        order_id = self._reduce(position, abs(position.size), codes.OrderRejected, now)
        self._review(now)
        return order_id

    def partial_close_position(
        self, account_id: int, contract_id: str, size: int, *, now: float
    ) -> int:
        """Reduce by ``size`` with a market order; ``size`` must be below the position's size."""
        self._clock = now
        codes = PartialClosePositionErrorCode
        position = self._open_position(
            account_id,
            contract_id,
            (codes.AccountNotFound, codes.ContractNotFound, codes.ContractNotActive),
            codes.PositionNotFound,
        )
        if size <= 0 or size >= abs(position.size):
            raise Rejection(codes.InvalidCloseSize, "Invalid close size specified.")
        if not self._calendar.is_open(_timestamp(now)):
            raise Rejection(codes.OrderRejected, None)
        order_id = self._reduce(position, size, codes.OrderRejected, now)
        self._review(now)
        return order_id

    # Queries

    def accounts(self, only_active: bool = True) -> list[Account]:
        """Every account, or only the active ones: a ruled account until its rules close it (a
        day's suspension keeps it listed), any other while it may trade."""
        return [a.snapshot() for a in self._accounts.values() if not only_active or self._active(a)]

    def _active(self, account: SimAccount) -> bool:
        if account.id in self._keeper:
            return self._keeper.status(account.id) is not AccountStatus.CLOSED
        return account.can_trade

    def account_rules(self, account_id: int) -> AccountRules | None:
        """The firm's rules an account is held to; None for an account without rules."""
        return self._keeper.rules(account_id) if account_id in self._keeper else None

    def rule_state(self, account_id: int) -> AccountState | None:
        """A ruled account's rules state (balance high, floor, day figures); None without rules."""
        return self._keeper.state(account_id) if account_id in self._keeper else None

    def rule_states(self) -> dict[int, AccountState]:
        """Every ruled account's rules state."""
        return self._keeper.states()

    def contracts(self, *, live: bool = False) -> list[Contract]:
        """The whole catalogue, expired contracts included; ``live`` changes nothing here."""
        return [spec.contract for spec in self._specs.values()]

    def contract(self, contract_id: str) -> Contract | None:
        """One contract, active or expired; None when unknown."""
        spec = self._specs.get(contract_id)
        return None if spec is None else spec.contract

    def orders(self, account_id: int, start: float, end: float | None = None) -> list[Order]:
        """Orders created within [start, end] (no end: up to now), oldest first."""
        self._require_account(account_id)
        return [
            order.snapshot()
            for order in self._orders.values()
            if order.account_id == account_id
            and start <= order.created_at
            and (end is None or order.created_at <= end)
        ]

    def open_orders(self, account_id: int) -> list[Order]:
        """Orders with status Open (Suspended ones are left out), oldest first."""
        self._require_account(account_id)
        return [
            order.snapshot()
            for order in self._orders.values()
            if order.account_id == account_id and order.status is OrderStatus.OPEN
        ]

    def order(self, account_id: int, order_id: int) -> Order:
        """One order of the account, whatever its status."""
        order = self._orders.get(order_id)
        if order is None or order.account_id != account_id:
            raise Rejection(SearchOrderByIdErrorCode.OrderNotFound, None)
        return order.snapshot()

    def positions(self, account_id: int) -> list[Position]:
        """The account's open positions."""
        self._require_account(account_id)
        return [p.snapshot() for p in self._positions.values() if p.account_id == account_id]

    def fills(self, account_id: int, start: float, end: float | None = None) -> list[Fill]:
        """The account's half-turn fills within [start, end], oldest first."""
        self._require_account(account_id)
        low, high = _timestamp(start), None if end is None else _timestamp(end)
        return [
            fill
            for fill in self._fills[account_id]
            if low <= fill.created_at and (high is None or fill.created_at <= high)
        ]

    def drain_events(self) -> list[UserEvent]:
        """Every event queued since the last drain, oldest first."""
        events, self._events = self._events, []
        return events

    # Validation helpers

    def _require_account(self, account_id: int) -> None:
        if account_id not in self._accounts:
            raise Rejection(AccountSearchErrorCode.AccountNotFound, None)

    def _working_order(self, account_id: int, order_id: int, not_found: int) -> _SimOrder:
        order = self._orders.get(order_id)
        if order is None or order.account_id != account_id or order.status.is_terminal:
            raise Rejection(not_found, None)
        return order

    def _open_position(
        self,
        account_id: int,
        contract_id: str,
        codes: tuple[int, int, int],
        no_position: int,
    ) -> _SimPosition:
        no_account, no_contract, inactive = codes
        if account_id not in self._accounts:
            raise Rejection(no_account, None)
        spec = self._specs.get(contract_id)
        if spec is None:
            raise Rejection(no_contract, None)
        if not spec.contract.active:
            raise Rejection(inactive, None)
        position = self._positions.get((account_id, contract_id))
        if position is None:
            raise Rejection(no_position, None)
        return position

    def _entry_prices(
        self,
        spec: ContractSpec,
        type: OrderType,
        side: OrderSide,
        *,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        trail_price: Decimal | None,
    ) -> _Prices:
        code = PlaceOrderErrorCode.OrderRejected
        tick = spec.contract.tick_size
        if type is OrderType.LIMIT:
            return _Prices(_checked_price(limit_price, tick, "limit", code))
        if type is OrderType.STOP:
            return _Prices(_checked_price(stop_price, tick, "stop", code))
        if type is OrderType.TRAILING_STOP:
            ticks, last = self._trail_distance(spec, trail_price, code, guarded=True)
            return _Prices(_trail_stop(side, last, ticks, tick), ticks)
        if type is OrderType.MARKET:
            return _Prices()
        book = self._books.get(spec.contract.id)
        join_bid = type is OrderType.JOIN_BID
        if book is None or (book.bid_size if join_bid else book.ask_size) == 0:
            touch = "bid" if join_bid else "ask"
            raise Rejection(code, f"Cannot join the {touch} without a market.")
        return _Prices(book.bid if join_bid else book.ask)

    def _trail_distance(
        self, spec: ContractSpec, trail_price: Decimal | None, code: int, *, guarded: bool
    ) -> tuple[int, Decimal]:
        tick = spec.contract.tick_size
        if trail_price is None:
            raise Rejection(code, "Trail Distance not set.")
        if not _aligned(trail_price, tick):
            raise Rejection(code, "Invalid trail price. Price is not aligned to tick size.")
        book = self._books.get(spec.contract.id)
        if book is None:
            raise Rejection(code, "Invalid symbol")
        if book.last is None:
            raise Rejection(code, "Cannot trail without a last price")
        ticks = int(_ARITHMETIC.divide_int(abs(book.last - trail_price), tick))
        if guarded and ticks > MAX_TRAIL_TICKS:
            raise Rejection(code, f"Trail Distance exceeds maximum ({MAX_TRAIL_TICKS})")
        if ticks == 0:
            raise Rejection(code, "Trail Distance must be at least one tick.")
        return ticks, book.last

    # Order life cycle

    def _new_order(
        self,
        account_id: int,
        spec: ContractSpec,
        type: OrderType,
        side: OrderSide,
        size: int,
        *,
        prices: _Prices,
        now: float,
    ) -> _SimOrder:
        order = _SimOrder(
            id=self._next_order_id,
            account_id=account_id,
            spec=spec,
            type=type,
            side=side,
            size=size,
            status=OrderStatus.NONE,
            created_at=now,
            updated_at=now,
            price=prices.price,
            trail_ticks=prices.trail_ticks,
        )
        self._next_order_id += 1
        return order

    def _register(self, order: _SimOrder, status: OrderStatus) -> None:
        """Record a new order with its first status and announce it."""
        order.status = status
        self._orders[order.id] = order
        if order.custom_tag is not None:
            self._tags[order.account_id].add(order.custom_tag)
        if status is OrderStatus.OPEN:
            self._working.setdefault(order.spec.contract.id, {})[order.id] = order
        self._emit_order(order)

    def _finish(self, order: _SimOrder, status: OrderStatus, now: float) -> None:
        order.status, order.updated_at = status, now
        self._working.get(order.spec.contract.id, {}).pop(order.id, None)
        self._emit_order(order)

    def _fill_market(self, order: _SimOrder, now: float) -> None:
        book = self._liquid_book(order.spec.contract.id, order.side)
        if book is None:
            self._finish(order, OrderStatus.REJECTED, now)
            return
        tick = order.spec.contract.tick_size
        executions = book.take(order.side, order.remaining, tick)
        if executions:
            self._execute(order, executions, now)
        else:
            self._finish(order, OrderStatus.CANCELLED, now)

    def _liquid_book(self, contract_id: str, side: OrderSide) -> _Book | None:
        book = self._books.get(contract_id)
        return book if book is not None and book.depth(side) > 0 else None

    def _reduce(self, position: _SimPosition, size: int, rejected: int, now: float) -> int:
        contract_id = position.contract.id
        side = OrderSide.SELL if position.size > 0 else OrderSide.BUY
        if self._liquid_book(contract_id, side) is None:
            raise Rejection(rejected, None)
        spec = self._specs[contract_id]
        order = self._new_order(
            position.account_id, spec, OrderType.MARKET, side, size, prices=_Prices(), now=now
        )
        self._register(order, OrderStatus.PENDING)
        self._fill_market(order, now)
        self._match(contract_id, now)
        return order.id

    def _trail(self, contract_id: str, last: Decimal, now: float) -> None:
        for order in self._working.get(contract_id, {}).values():
            if order.trail_ticks is None:
                continue
            tick = order.spec.contract.tick_size
            stop = _trail_stop(order.side, last, order.trail_ticks, tick)
            tighter = stop > order.price if order.side is OrderSide.SELL else stop < order.price
            if tighter:
                order.price, order.updated_at = stop, now
                self._emit_order(order)

    def _match(self, contract_id: str, now: float) -> None:
        """Fill whatever became marketable, oldest order first, until nothing more trades."""
        book = self._books.get(contract_id)
        working = self._working.get(contract_id)
        if book is None or not working:
            return
        while True:
            for order in list(working.values()):
                executions = self._executions(order, book)
                if executions:
                    self._execute(order, executions, now)
                    break
            else:
                return

    @staticmethod
    def _executions(order: _SimOrder, book: _Book) -> list[Execution]:
        tick = order.spec.contract.tick_size
        if order.type in _STOP_TYPES:
            if book.triggered(order.side, order.price):
                return book.take(order.side, order.remaining, tick)
            return []
        return book.take(order.side, order.remaining, tick, limit=order.price)

    def _execute(self, order: _SimOrder, executions: list[Execution], now: float) -> None:
        """Book the executions, then announce Trade(s), Order, Position and Account."""
        account = self._accounts[order.account_id]
        positions = [
            self._apply_fill(account, order, price, size, now) for price, size in executions
        ]
        order.updated_at = now
        if order.remaining == 0:
            self._finish(order, OrderStatus.FILLED, now)
        elif order.type is OrderType.MARKET:
            self._finish(order, OrderStatus.CANCELLED, now)
        else:
            order.status = OrderStatus.OPEN
            self._emit_order(order)
        self._emit(order.account_id, UserEventKind.POSITION, positions[-1].snapshot())
        self._emit(order.account_id, UserEventKind.ACCOUNT, account.snapshot())
        if order.parent_order_id is not None:
            self._follow_sibling(order, now)
        elif order.status.is_terminal:  # filled, or a market order's unfilled rest cancelled
            self._attach_brackets(order, now)

    def _apply_fill(
        self, account: SimAccount, order: _SimOrder, price: Decimal, size: int, now: float
    ) -> _SimPosition:
        """Net one execution into the position, book fees and P&L, and announce the trade."""
        spec = order.spec
        contract = spec.contract
        signed = size if order.side is OrderSide.BUY else -size
        key = (account.id, contract.id)
        position = self._positions.get(key)
        pnl: Decimal | None = None
        if position is None:
            position = _SimPosition(
                self._next_position_id, account.id, contract, now, 0, PositionSide.LONG, Fraction(0)
            )
            self._next_position_id += 1
            self._positions[key] = position
        if position.size * signed >= 0:
            held = abs(position.size)
            position.average = (position.average * held + Fraction(price) * size) / (held + size)
        else:
            closed = min(size, abs(position.size))
            points = (Fraction(price) - position.average) * (1 if position.size > 0 else -1)
            ticks = points / Fraction(contract.tick_size)
            pnl = _cents(ticks * Fraction(contract.tick_value) * closed)
            if size > closed:
                position.average = Fraction(price)
        position.size += signed
        if position.size:
            position.side = PositionSide.LONG if position.size > 0 else PositionSide.SHORT
        else:
            del self._positions[key]
        fees, commissions = spec.fee * size, spec.commission * size
        account.balance += (pnl or 0) - fees - commissions
        if account.id in self._keeper:
            executed = RuleFill(contract.id, order.side, size, price, fees + commissions)
            self._keeper.record_fill(account.id, executed, contract)
            self._review_due.add(account.id)
        order.fill_volume += size
        order.notional += price * size
        fill = Fill(
            id=self._next_fill_id,
            account_id=account.id,
            contract_id=contract.id,
            created_at=_timestamp(now),
            price=price,
            side=order.side,
            size=size,
            order_id=order.id,
            fees=fees,
            profit_and_loss=pnl,
            commissions=commissions,
        )
        self._next_fill_id += 1
        self._fills[account.id].append(fill)
        self._emit(account.id, UserEventKind.TRADE, fill)
        return position

    def _attach_brackets(self, entry: _SimOrder, now: float) -> None:
        """Create the OCO children of a bracket entry for what it filled."""
        if entry.fill_volume == 0 or (entry.stop_loss is None and entry.take_profit is None):
            return
        tick = entry.spec.contract.tick_size
        reference = tick * round(Fraction(entry.notional) / (Fraction(tick) * entry.fill_volume))
        children: list[_SimOrder] = []
        for leg in (entry.stop_loss, entry.take_profit):
            if leg is None:
                continue
            trailing = leg.type is OrderType.TRAILING_STOP
            prices = _Prices(reference + tick * leg.ticks, abs(leg.ticks) if trailing else None)
            side = entry.side.opposite
            child = self._new_order(
                entry.account_id,
                entry.spec,
                leg.type,
                side,
                entry.fill_volume,
                prices=prices,
                now=now,
            )
            child.parent_order_id = entry.id
            children.append(child)
        if len(children) == 2:
            children[0].linked_order_id = children[1].id
            children[1].linked_order_id = children[0].id
        for child in children:
            self._register(child, OrderStatus.OPEN)

    def _follow_sibling(self, child: _SimOrder, now: float) -> None:
        """OCO: a filled child cancels its sibling; a partial fill shrinks it to match."""
        sibling = None if child.linked_order_id is None else self._orders[child.linked_order_id]
        if sibling is None or sibling.status.is_terminal:
            return
        if child.status is OrderStatus.FILLED:
            self._finish(sibling, OrderStatus.CANCELLED, now)
            return
        target = sibling.fill_volume + child.remaining
        if target < sibling.size:
            sibling.size, sibling.updated_at = target, now
            self._emit_order(sibling)

    # Expiry

    def expired_holdings(self) -> list[str]:
        """Contracts with a position or a working order that no longer trade (expired, or gone
        from the catalogue), sorted."""
        held = {contract_id for _, contract_id in self._positions}
        held.update(contract_id for contract_id, working in self._working.items() if working)
        return sorted(c for c in held if c not in self._specs or not self._specs[c].contract.active)

    def settle(self, contract_id: str, price: Decimal | None, now: float) -> None:
        """Close every position on a contract that stopped trading at its settlement ``price``
        (without fees; ``None``: at each position's own average, so without P&L), and cancel
        its working orders."""
        self._clock = now
        for order in list(self._working.get(contract_id, {}).values()):
            self._finish(order, OrderStatus.CANCELLED, now)
        for (account_id, held_id), position in list(self._positions.items()):
            if held_id != contract_id or position.size == 0:
                continue
            spec = self._specs.get(contract_id)
            if spec is None:
                spec = attrs.evolve(self._any_spec(), contract=position.contract)
            free = attrs.evolve(spec, fee=Decimal(0), commission=Decimal(0))
            side = OrderSide.SELL if position.size > 0 else OrderSide.BUY
            size = abs(position.size)
            order = self._new_order(
                account_id, free, OrderType.MARKET, side, size, prices=_Prices(), now=now
            )
            self._register(order, OrderStatus.PENDING)
            at = _to_decimal(position.average) if price is None else price
            self._execute(order, [(at, size)], now)

    # Account rules

    def _rules_allow_trading(self, account_id: int) -> bool:
        """False when the account's rules, rather than its settings, keep it from trading (the
        rules' own check then refuses with the rule's name)."""
        return (
            account_id not in self._keeper
            or self._keeper.status(account_id) is AccountStatus.ACTIVE
        )

    def _not_trading_message(self, account_id: int) -> str:
        if self._rules_allow_trading(account_id):
            return _NOT_TRADING
        closed = self._keeper.status(account_id) is AccountStatus.CLOSED
        rules = self._keeper.rules(account_id)
        if closed:
            return f"Maximum loss limit: the {rules.name} account is closed."
        return (
            f"Daily loss limit: trading on the {rules.name} account is disabled "
            "until the next trading day."
        )

    def marks(self) -> dict[str, Decimal]:
        """The price each contract's open P&L is reckoned at: its last trade, else the mid."""
        marks: dict[str, Decimal] = {}
        for contract_id, book in self._books.items():
            if book.last is not None:
                marks[contract_id] = book.last
            else:
                marks[contract_id] = _ARITHMETIC.divide(book.bid + book.ask, Decimal(2))
        return marks

    def _exposure(self, account_id: int, contract_id: str, side: OrderSide) -> int:
        """What the account's working orders on ``side`` of the contract would add."""
        working = self._working.get(contract_id, {}).values()
        mine = [order for order in working if order.account_id == account_id]
        return working_exposure(mine, contract_id, side)

    def _judge(
        self,
        account_id: int,
        contract_id: str,
        side: OrderSide,
        size: int,
        *,
        code: int = PlaceOrderErrorCode.OrderRejected,
    ) -> None:
        """Refuse, naming the rule, an order the account's rules do not allow. It is judged
        together with the working orders on its side, as if they all filled: so no set of
        orders, each within the rules, can take the account past them."""
        if account_id not in self._keeper:
            return
        pending = self._exposure(account_id, contract_id, side)
        proposed = ProposedOrder(contract_id, side, size + pending)
        verdict = self._keeper.check(account_id, proposed, marks=self.marks())
        if verdict.allowed:
            return
        if pending and verdict.rule is Rule.MAX_POSITION:
            verdict = attrs.evolve(
                verdict,
                message=f"{verdict.message}, counting {pending} contracts in working orders "
                "on the same side",
            )
        raise Rejection(code, refusal_message(verdict))

    def review(self, now: float) -> None:
        """Turn the trading day when it is due, flatten every account from the flatten time to
        the close (its working orders cancelled once, its positions until they are flat), and
        enforce every ruled account's limits."""
        self._clock = now
        due = self._calendar.flatten_due(_timestamp(now))
        if due is not None:
            if due != self._flattened:
                self._flattened = due
                for account_id in self._accounts:
                    self.cancel_working(account_id, now)
            if now >= self._next_flatten:
                self._next_flatten = now + _FLATTEN_RETRY
                for account_id in sorted({owner for owner, _ in self._positions}):
                    self.flatten(account_id, now)
        self._review(now)

    def _require_session(
        self,
        account_id: int,
        contract_id: str,
        side: OrderSide,
        size: int,
        *,
        now: float,
        code: int = PlaceOrderErrorCode.OrderRejected,
    ) -> None:
        """Refuse an order while the market is closed, and one that adds risk once the flatten
        time has come (positions must be flat by the close); working orders on the order's side
        count with it."""
        moment = _timestamp(now)
        if not self._calendar.is_open(moment):
            raise Rejection(code, OUTSIDE_HOURS)
        if self._calendar.flatten_due(moment) is None:
            return
        position = self._positions.get((account_id, contract_id))
        held = 0 if position is None else position.size
        total = size + self._exposure(account_id, contract_id, side)
        reducing = held != 0 and (held > 0) == (side is OrderSide.SELL) and total <= abs(held)
        if not reducing:
            raise Rejection(
                code,
                f"Flatten time: positions must be flat by {self._calendar.flatten_time} "
                "Chicago time; orders that add risk wait for the next session.",
            )

    def _review(self, now: float) -> None:
        if self._reviewing or not self._keeper.accounts:
            return
        if now >= self._next_turn:
            self._review_due.update(self._keeper.accounts)
            self._next_turn = _day_turn_after(now)
        self._reviewing = True
        try:
            for _ in range(_REVIEW_PASSES):
                due, self._review_due = self._review_due, set()
                if not due:
                    break
                marks = self.marks()
                for account_id in sorted(due):
                    self._enforce(account_id, marks, now)
        finally:
            self._reviewing = False

    def _enforce(self, account_id: int, marks: Mapping[str, Decimal], now: float) -> None:
        """Carry out an assessment: cancel working orders, flatten, then announce the account."""
        before = self._keeper.status(account_id)
        assessment = self._keeper.review(account_id, marks, now)
        if assessment is None:
            return
        if needs_cancel(assessment):
            self.cancel_working(account_id, now)
        if needs_flatten(assessment):
            self.flatten(account_id, now)
        after = self._keeper.status(account_id)
        account = self._accounts[account_id]
        if after is not before:
            account.can_trade = after is AccountStatus.ACTIVE
            self._emit(account_id, UserEventKind.ACCOUNT, account.snapshot())

    def cancel_working(self, account_id: int, now: float) -> None:
        """Cancel every working order of the account, oldest first."""
        self._clock = now
        for order in list(self._orders_working(account_id)):
            self._finish(order, OrderStatus.CANCELLED, now)

    def _orders_working(self, account_id: int) -> Iterator[_SimOrder]:
        for working in list(self._working.values()):
            for order in list(working.values()):
                if order.account_id == account_id:
                    yield order

    def flatten(self, account_id: int, now: float) -> None:
        """Close every open position of the account with market orders; a position without a
        market to close against stays open until the next review."""
        self._clock = now
        held = [p for (owner, _), p in self._positions.items() if owner == account_id]
        for position in held:
            if position.size == 0:
                continue
            try:
                self._reduce(
                    position, abs(position.size), ClosePositionErrorCode.OrderRejected, now
                )
            except Rejection:
                if account_id in self._keeper:  # judged again at the next review
                    self._review_due.add(account_id)

    # Events

    def _emit_order(self, order: _SimOrder) -> None:
        self._emit(order.account_id, UserEventKind.ORDER, order.snapshot())

    def _emit(
        self, account_id: int, kind: UserEventKind, entity: Account | Order | Position | Fill
    ) -> None:
        if isinstance(entity, Order):
            self._dirty_orders.add(entity.id)
        elif isinstance(entity, Position):
            self._dirty_positions.add((account_id, entity.contract_id))
        elif isinstance(entity, Fill):
            self._new_fills.append(entity)
        else:
            self._dirty_accounts.add(account_id)
        action = 0 if kind is UserEventKind.TRADE else 1
        self._events.append(UserEvent(account_id, kind, entity, action))
