"""The API console renders in a real browser with the internet out of reach."""

from __future__ import annotations

import re

import attrs
import pytest
from playwright.sync_api import Page, expect

from .conftest import Cockpit

PLACE_ORDER = re.compile(r"post\s*/orders", re.IGNORECASE)
"""How the operation that places an order reads in either console: its method, then its path."""


@attrs.frozen
class Console:
    """One of the console's pages and where it draws the operation that places an order."""

    path: str
    operation: str


SWAGGER_UI = Console("/docs", "#operations-orders-place_order")
REDOC = Console("/redoc", '[data-section-id="tag/orders/operation/place_order"]')


@pytest.mark.parametrize("console", [SWAGGER_UI, REDOC], ids=["swagger-ui", "redoc"])
def test_the_api_console_shows_its_operations_without_the_internet(
    cockpit: Cockpit,
    page: Page,
    page_errors: list[str],
    blocked_requests: list[str],
    console: Console,
) -> None:
    page.goto(cockpit.url(console.path))
    block = page.locator(console.operation)
    expect(block).to_be_visible()
    expect(block).to_contain_text(PLACE_ORDER)
    page.wait_for_load_state("networkidle")  # what the page fetches once drawn is asked for too
    assert blocked_requests == []
    assert page_errors == []
