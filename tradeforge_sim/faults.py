"""Faults the simulator can inject, set per run or changed by a test while it runs."""

from __future__ import annotations

import random

import attrs


@attrs.define
class Faults:
    """Each field is one kind of fault; the defaults inject nothing.

    Counters (``refuse_connections``, ``malformed_frames``, ``rest_statuses``) are consumed as
    the faults happen, so a test can ask for exactly one.
    """

    drop_hub_after: int | None = None  # close every hub connection after N pushed messages
    drop_probability: float = 0.0  # chance of dropping a hub connection at each push
    refuse_connections: int = 0  # the next N TCP connections are closed at once
    connect_delay: float = 0.0  # seconds before a new connection is served
    hub_close: tuple[str | None, bool] | None = None  # next push: Close(error, allowReconnect)
    malformed_frames: int = 0  # the next N pushes are replaced by a malformed record
    # Statuses for the next REST answers, each answered instead of serving the request (0: serve).
    rest_statuses: list[int] = attrs.field(factory=list)
    rest_delay: float = 0.0  # seconds before each REST answer
    rest_drops: int = 0  # the next N REST requests are carried out, then the socket is closed
    silent: bool = False  # hubs send nothing (no data, no pings) but keep their sockets open
    # Hubs ("user", "market") that are down for as long as their name is here: their connections
    # drop at once, as in a network failure, and new upgrades to them are refused with HTTP 503.
    hubs_down: set[str] = attrs.field(factory=set)
    rng: random.Random = attrs.field(factory=lambda: random.Random(0), repr=False)

    def take_refusal(self) -> bool:
        """True when this connection must be refused."""
        if self.refuse_connections > 0:
            self.refuse_connections -= 1
            return True
        return False

    def take_rest_status(self) -> int | None:
        """The status to answer the next REST request with instead of serving it, if any."""
        return (self.rest_statuses.pop(0) or None) if self.rest_statuses else None

    def take_rest_drop(self) -> bool:
        """True when this REST request must be served but its answer lost."""
        if self.rest_drops > 0:
            self.rest_drops -= 1
            return True
        return False

    def hub_down(self, hub: str) -> bool:
        """True while ``hub`` ("user" or "market") must be unreachable."""
        return hub in self.hubs_down

    def take_malformed(self) -> bool:
        """True when the next hub push must be malformed."""
        if self.malformed_frames > 0:
            self.malformed_frames -= 1
            return True
        return False

    def take_hub_close(self) -> tuple[str | None, bool] | None:
        """A Close to send instead of the next push, if one was asked for."""
        close, self.hub_close = self.hub_close, None
        return close

    def should_drop(self, pushed: int) -> bool:
        """True when a hub connection that pushed ``pushed`` messages must be dropped now."""
        if self.drop_hub_after is not None and pushed >= self.drop_hub_after:
            return True
        return self.drop_probability > 0 and self.rng.random() < self.drop_probability
