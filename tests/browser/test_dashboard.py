"""The cockpit at ``/`` in a real browser: live prices, the book, the chart, and trading through
the ticket and the cancel button against ``tradeforge serve`` on the embedded simulator."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from .conftest import Cockpit, running_cockpit

PRICE = re.compile(r"^\d+(\.\d+)?$")


def open_cockpit(page: Page, cockpit: Cockpit) -> None:
    """Follow the link ``serve`` prints when it makes the token: the token in the fragment."""
    page.goto(cockpit.url(f"/#token={cockpit.token}"))
    expect(page.get_by_test_id("stream-status")).to_contain_text("stream: live")
    expect(page.get_by_test_id("last-price")).to_have_text(PRICE)


def row_of(table: Locator, text: str) -> Locator:
    return table.locator("tbody tr").filter(has_text=text)


def test_the_cockpit_shows_the_market_and_trades_through_its_ticket(
    cockpit: Cockpit, page: Page, page_errors: list[str], blocked_requests: list[str]
) -> None:
    open_cockpit(page, cockpit)
    # The token left the address bar for this tab's storage.
    assert "token" not in page.url
    stored = page.evaluate("sessionStorage.getItem('tradeforge.token')")
    assert stored == cockpit.token
    status = page.get_by_test_id("stream-status")
    expect(status).to_contain_text("market hub: connected")
    expect(status).to_contain_text("user hub: connected")
    expect(page.get_by_test_id("backend")).to_contain_text("simulator")

    # Live prices: the last price moves, the book has both sides, the chart has bars.
    last = page.get_by_test_id("last-price")
    first = last.text_content()
    page.wait_for_function(
        "before => document.querySelector('[data-testid=last-price]').textContent !== before",
        arg=first,
    )
    book = page.get_by_test_id("book")
    expect(book.locator("td.bid").first).to_have_text(re.compile(r"^\d+$"))
    expect(book.locator("td.ask").first).to_have_text(re.compile(r"^\d+$"))
    expect(page.get_by_test_id("chart")).to_have_attribute("data-bars", re.compile(r"^[1-9]\d*$"))
    expect(page.get_by_test_id("balance")).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))

    # A limit order far below the market rests, and its cancel button takes it away.
    ticket = page.get_by_test_id("order-ticket")
    ticket.get_by_test_id("order-type").select_option("LIMIT")
    ticket.get_by_test_id("order-price").fill("1000")
    ticket.get_by_test_id("order-submit").click()
    result = page.get_by_test_id("ticket-result")
    expect(result).to_contain_text("OPEN")
    order_id = re.search(r"order (\d+)", result.text_content() or "")
    assert order_id is not None
    orders = page.get_by_test_id("orders")
    resting = row_of(orders, order_id.group(1))
    expect(resting).to_contain_text("LIMIT")
    page.get_by_test_id(f"cancel-{order_id.group(1)}").click()
    expect(resting).to_have_count(0)

    # A market order fills: the fill and the position appear, marked to the market.
    ticket.get_by_test_id("order-type").select_option("MARKET")
    ticket.get_by_test_id("order-size").fill("1")  # one lot: one fill
    ticket.get_by_test_id("order-submit").click()
    expect(result).to_contain_text("BUY 1 MARKET")
    expect(result).to_contain_text("FILLED")
    filled = re.search(r"order (\d+)", result.text_content() or "")
    assert filled is not None
    expect(row_of(page.get_by_test_id("fills"), filled.group(1))).to_have_count(1)
    position = row_of(page.get_by_test_id("positions"), "LONG")
    expect(position.locator("td").nth(2)).to_have_text("1")
    expect(position.locator("td").last).to_have_text(re.compile(r"^-?\$[\d,]+\.\d\d$"))
    # The day's figures count the fill once, its fees off: the opening fill costs its fees.
    expect(page.get_by_test_id("day-fills")).to_have_text("1")
    expect(page.get_by_test_id("day-pnl")).to_have_text(re.compile(r"^-\$\d+\.\d\d$"))
    expect(page.get_by_test_id("open-pnl")).to_have_text(re.compile(r"^-?\$[\d,]+\.\d\d$"))
    expect(page.get_by_text("No firm rules are known for this account")).to_be_visible()

    # Another account shows its own orders only, and this one's again when picked back.
    ticket.get_by_test_id("order-type").select_option("LIMIT")
    ticket.get_by_test_id("order-price").fill("1000")
    ticket.get_by_test_id("order-submit").click()
    expect(result).to_contain_text("OPEN")
    kept = re.search(r"order (\d+)", result.text_content() or "")
    assert kept is not None
    expect(row_of(orders, kept.group(1))).to_have_count(1)
    page.get_by_test_id("account").select_option("20258289")
    expect(orders.locator("tbody tr")).to_have_count(0)
    expect(page.get_by_test_id("positions").locator("tbody tr")).to_have_count(0)
    page.get_by_test_id("account").select_option("20258288")
    expect(row_of(orders, kept.group(1))).to_have_count(1)

    # Another symbol: the chart and the book follow it.
    page.get_by_test_id("symbol").fill("MNQ")
    page.get_by_test_id("symbol").press("Enter")
    expect(page.get_by_test_id("contract")).to_contain_text("MNQ")
    expect(page.get_by_test_id("chart")).to_have_attribute("data-bars", re.compile(r"^[1-9]\d*$"))
    expect(book.locator("td.bid").first).to_have_text(re.compile(r"^\d+$"))

    assert page_errors == []
    assert blocked_requests == []


def test_a_read_only_cockpit_shows_everything_and_offers_no_trading(
    read_only_cockpit: Cockpit, page: Page, page_errors: list[str], blocked_requests: list[str]
) -> None:
    open_cockpit(page, read_only_cockpit)
    expect(page.get_by_test_id("mode")).to_have_text("read-only")
    expect(page.get_by_test_id("order-submit")).to_be_disabled()
    expect(page.get_by_test_id("order-size")).to_be_disabled()
    expect(page.get_by_test_id("ticket-result")).to_have_text("this service is read-only")
    expect(page.get_by_test_id("book").locator("td.bid").first).to_have_text(re.compile(r"\d"))
    assert page_errors == []
    assert blocked_requests == []


def test_without_a_token_the_cockpit_asks_for_it_once(
    cockpit: Cockpit, page: Page, page_errors: list[str]
) -> None:
    page.goto(cockpit.url("/"))
    form = page.get_by_test_id("token-form")
    expect(form).to_be_visible()
    expect(page.get_by_test_id("order-ticket")).to_be_hidden()
    form.locator("input").fill("not-the-token")
    form.locator("button").click()
    expect(form).to_contain_text("refused")
    form.locator("input").fill(cockpit.token)
    form.locator("button").click()
    expect(page.get_by_test_id("last-price")).to_have_text(PRICE)
    page.reload()  # kept for the tab: no second prompt
    expect(page.get_by_test_id("last-price")).to_have_text(PRICE)
    expect(form).to_be_hidden()
    # The refused token's 401 is the only error the browser noted.
    assert all("401" in error for error in page_errors), page_errors


def test_a_ruled_account_shows_what_is_left_of_its_limits(
    page: Page, page_errors: list[str], blocked_requests: list[str]
) -> None:
    with running_cockpit("--account", "50K") as cockpit:
        open_cockpit(page, cockpit)
        expect(page.get_by_test_id("risk-rules")).to_have_text("50K Combine · ACTIVE")
        expect(page.get_by_test_id("risk-daily")).to_contain_text("of $1,000.00")
        expect(page.get_by_test_id("risk-max")).to_contain_text("of $2,000.00")
        expect(page.get_by_test_id("risk-contracts")).to_have_text("5 of 5")
        page.get_by_test_id("order-size").fill("10")  # ten micros weigh one contract
        page.get_by_test_id("order-submit").click()
        expect(page.get_by_test_id("ticket-result")).to_contain_text("FILLED")
        expect(page.get_by_test_id("risk-contracts")).to_have_text("4 of 5")
    assert page_errors == []
    assert blocked_requests == []
