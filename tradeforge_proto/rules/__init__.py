"""Prop-firm account rules, pure: position size, daily loss, trailing max loss, target, consistency.

Figures are Decimals; the clock and the marks are passed in. ``AccountRules`` holds the limits
(``presets`` has Topstep's account types), ``AccountState`` the account and its transitions,
``check_order`` judges an order and ``evaluate`` the account; ``TradingCalendar`` says when
the market is open and when positions must be flat; ``RiskGuard`` keeps one account's state as a
client sees it, to refuse an order before it is sent and to warn as a limit nears.
"""

from .account import (
    EXACT,
    TRANSITIONS,
    AccountState,
    AccountStatus,
    DayResult,
    Event,
    Fill,
    Holding,
    MissingFigure,
    to_dollars,
)
from .checks import (
    Action,
    Assessment,
    Consistency,
    Decision,
    Finding,
    OrderLike,
    ProposedOrder,
    Rule,
    Verdict,
    WorkingOrder,
    apply_breaches,
    check_order,
    evaluate,
    weighted_position,
    working_exposure,
)
from .config import AccountRules
from .contracts import (
    CME_WEIGHTS,
    MICRO,
    MINI,
    ContractSpec,
    ContractWeights,
    TickSpec,
    symbol_root,
)
from .guard import RiskGuard
from .presets import COMBINE_50K, COMBINE_100K, COMBINE_150K, EXPRESS_FUNDED_50K, PRESETS
from .sessions import OUTSIDE_HOURS, Hours, TradingCalendar
from .tradingday import CHICAGO, DAY_TURN, day_start, trading_day

__all__ = [
    "CHICAGO",
    "CME_WEIGHTS",
    "COMBINE_50K",
    "COMBINE_100K",
    "COMBINE_150K",
    "DAY_TURN",
    "EXACT",
    "EXPRESS_FUNDED_50K",
    "MICRO",
    "MINI",
    "OUTSIDE_HOURS",
    "PRESETS",
    "TRANSITIONS",
    "AccountRules",
    "AccountState",
    "AccountStatus",
    "Action",
    "Assessment",
    "Consistency",
    "ContractSpec",
    "ContractWeights",
    "DayResult",
    "Decision",
    "Event",
    "Fill",
    "Finding",
    "Holding",
    "Hours",
    "MissingFigure",
    "OrderLike",
    "ProposedOrder",
    "RiskGuard",
    "Rule",
    "TickSpec",
    "TradingCalendar",
    "Verdict",
    "WorkingOrder",
    "apply_breaches",
    "check_order",
    "day_start",
    "evaluate",
    "symbol_root",
    "to_dollars",
    "trading_day",
    "weighted_position",
    "working_exposure",
]
