// The cockpit: one page over the service's own REST routes and /ws/stream, no third-party code.
"use strict";

const TOKEN_KEY = "tradeforge.token";
const ACCOUNT_KEY = "tradeforge.account";
const BEARER_PROTOCOL = "tradeforge.bearer";
const WORKING = new Set(["OPEN", "PENDING", "PENDING_CANCELLATION", "SUSPENDED"]);
const BID_TYPES = new Set(["BID", "BEST_BID", "NEW_BEST_BID"]);
const ASK_TYPES = new Set(["ASK", "BEST_ASK", "NEW_BEST_ASK"]);
const USER_TYPES = ["ORDER_UPDATE", "POSITION_UPDATE", "USER_TRADE", "ACCOUNT_UPDATE"];
const BOOK_LEVELS = 10;
const MAX_FILLS = 50; // shown
const MAX_DAY_FILLS = 5000; // kept for the day's figures
const MAX_BARS = 600;
const BAR_COUNT = 150;
const MAX_BACKOFF_MS = 30000;
const READY_EVERY_MS = 5000;
const DAY_EVERY_MS = 60000;
const RISK_EVERY_MS = 15000; // marks move: the limits left move with them

const $ = (id) => document.getElementById(id);
const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

const state = {
  token: null,
  ready: null,
  accounts: [],
  account: null,
  contract: null,
  minutes: 1,
  bars: [],
  bids: new Map(),
  asks: new Map(),
  lastPrices: new Map(),
  contracts: new Map(),
  orders: new Map(),
  positions: new Map(),
  dayFills: new Map(), // id -> fill of the current trading day
  dayStart: null,
  market: new Map(), // contract id -> Set of market data types wanted
  ws: null,
  wsFailures: 0,
  wsOpenedOnce: false,
  reconnects: 0,
  reconnectTimer: null,
  timersStarted: false,
  sending: false, // an order is on its way: the ticket sends no other
  symbolRequest: 0,
  hubLost: false, // a hub dropped since the last recovery
  recoveries: 0,
  chartDirty: true,
};

class Unauthorized extends Error {}

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function detailOf(body, fallback) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail) && body.detail.length) {
    return body.detail.map((issue) => `${(issue.loc || []).join(".")}: ${issue.msg}`).join("; ");
  }
  return fallback;
}

// --- the API ------------------------------------------------------------------------------

async function api(method, path, { query, body, allow = [] } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
  }
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  if (response.status === 401) throw new Unauthorized("the service refused the token");
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (!response.ok && !allow.includes(response.status)) {
    throw new ApiError(response.status, detailOf(data, response.statusText), data);
  }
  return data;
}

// --- small helpers ------------------------------------------------------------------------

function say(text, isError = false) {
  const line = $("message");
  line.textContent = text;
  line.classList.toggle("error", isError);
  clearTimeout(say.timer);
  if (text) say.timer = setTimeout(() => (line.textContent = ""), isError ? 12000 : 5000);
}

function failed(error) {
  if (error instanceof Unauthorized) {
    askToken(error.message);
  } else {
    say(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error), true);
  }
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function replaceRows(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
}

function signClass(value) {
  if (value > 0) return "up";
  if (value < 0) return "down";
  return "";
}

function timeText(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "–";
}

// --- the token ----------------------------------------------------------------------------

function tokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    // Out of the address bar and the history: the token stays in this tab's storage only.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function askToken(reason = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  clearTimeout(state.reconnectTimer);
  if (state.ws) {
    const old = state.ws;
    state.ws = null;
    old.close(1000, "token refused");
  }
  $("cockpit").hidden = true;
  $("token-form").hidden = false;
  $("token-error").textContent = reason;
  $("token-input").focus();
}

// --- readiness and the stream's health ----------------------------------------------------

function showReady(ready) {
  state.ready = ready;
  const backend = $("backend");
  // Anything but the simulator is a real firm's account: marked as such.
  backend.textContent = ready.simulator
    ? "paper exchange (simulator)"
    : `${ready.provider} · ${ready.environment}`;
  backend.className = `badge ${ready.simulator ? "paper" : "live"}`;
  $("mode").textContent = ready.read_only ? "read-only" : "trading enabled";
  $("mode").className = `badge ${ready.read_only ? "" : "live"}`;
  showHub("market", ready.stream.market_hub);
  showHub("user", ready.stream.user_hub);
  if (!ready.ready) say(`backend login ${ready.login}: ${ready.detail || ""}`, true);
}

function showHub(hub, text) {
  $(`hub-${hub}`).textContent = `${hub} hub: ${text}`;
}

function showSocket(text, kind) {
  const dot = $("ws-state");
  dot.textContent = `stream: ${text}`;
  dot.className = `dot ${kind}`;
}

function showCounts() {
  $("reconnects").textContent = `reconnects: ${state.reconnects}`;
  $("recoveries").textContent = `recoveries: ${state.recoveries}`;
}

async function refreshReady() {
  try {
    showReady(await api("GET", "/ready", { allow: [503] }));
  } catch (error) {
    if (error instanceof Unauthorized) failed(error);
    else showSocket("service unreachable", "");
  }
}

// --- the stream ---------------------------------------------------------------------------

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function subscribeMarket(contractId, types, action = "subscribe") {
  if (!types.length) return;
  send({ action, market_data: { provider_contract_ids: [contractId], data_types: types } });
}

function wantMarket(contractId, types) {
  const held = state.market.get(contractId) || new Set();
  const added = types.filter((t) => !held.has(t));
  for (const t of added) held.add(t);
  state.market.set(contractId, held);
  subscribeMarket(contractId, added);
}

function dropMarket(contractId, types) {
  const held = state.market.get(contractId);
  if (!held) return;
  const removed = types.filter((t) => held.has(t));
  for (const t of removed) held.delete(t);
  if (!held.size) state.market.delete(contractId);
  subscribeMarket(contractId, removed, "unsubscribe");
}

function subscribeAll() {
  for (const [contractId, types] of state.market) subscribeMarket(contractId, [...types]);
  if (state.account) {
    send({
      action: "subscribe",
      user_data: { provider_account_ids: [state.account.id], data_types: USER_TYPES },
    });
  }
}

function connectStream() {
  clearTimeout(state.reconnectTimer);
  if (state.ws) {
    const old = state.ws;
    state.ws = null; // its close handler then does nothing
    old.close(1000, "replaced");
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  showSocket("connecting", "wait");
  // A browser cannot set headers on a WebSocket: the token travels as a subprotocol, never in
  // the address.
  const ws = new WebSocket(`${scheme}//${location.host}/ws/stream`, [BEARER_PROTOCOL, state.token]);
  state.ws = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    state.wsFailures = 0;
    showSocket("live", "ok");
    subscribeAll();
    if (state.wsOpenedOnce) reloadAccount(); // what happened while away comes from REST
    state.wsOpenedOnce = true;
  };
  ws.onmessage = (message) => {
    try {
      onEvent(JSON.parse(message.data));
    } catch (error) {
      say(`could not show an event: ${error}`, true);
    }
  };
  ws.onclose = (closed) => {
    if (state.ws !== ws || !state.token) return;
    state.ws = null;
    if (closed.code === 1008) {
      askToken("the service refused the token");
      return;
    }
    state.wsFailures += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(state.wsFailures, 6));
    const reason = closed.code === 1013 ? "too slow, " : "";
    showSocket(`offline (${reason}again in ${Math.round(delay / 1000)} s)`, "wait");
    state.reconnectTimer = setTimeout(() => state.token && connectStream(), delay);
    // Refused before it opened: the handshake's 403 reaches the page as 1006, so ask /ready,
    // which answers 401 for a token no longer valid.
    if (!opened) refreshReady();
  };
}

function onEvent(message) {
  const data = message.data;
  switch (message.event_type) {
    case "QUOTE":
      return onQuote(data);
    case "DEPTH":
      return onDepth(data);
    case "TRADE":
      return onTrade(data);
    case "ORDER_UPDATE":
      return onOrder(data);
    case "POSITION_UPDATE":
      return onPosition(data);
    case "USER_TRADE":
      return onFill(data);
    case "ACCOUNT_UPDATE":
      return onAccount(data);
    case "CONNECTED":
    case "RESUBSCRIBED":
      return showHub(data.hub, "connected");
    case "DISCONNECTED":
      state.hubLost = true;
      return showHub(data.hub, data.will_reconnect ? "disconnected" : "stopped");
    case "RECONNECTING":
      state.reconnects += 1;
      showCounts();
      return showHub(data.hub, `reconnecting in ${Number(data.delay).toFixed(1)} s`);
    case "RESYNCED":
      // The first connection's catch-up is no recovery; one after a lost connection is.
      if (state.hubLost) {
        state.hubLost = false;
        state.recoveries += 1;
        showCounts();
      }
      return reloadAccount();
    case "FEED_GAP":
      state.recoveries += 1;
      showCounts();
      return loadBars().catch(failed);
    case "FEED_STALE":
      return showHub(data.hub, `stale for ${Math.round(data.silent_for)} s`);
    case "RESYNC_FAILED":
      return say(`recovering missed account events failed: ${data.error}`, true);
    case "SUBSCRIPTION_FAILED":
      return say(`subscription refused: ${data.error}`, true);
    case "SESSION_LOGGED_OUT":
      return say("the provider ended the login session", true);
    case "STREAM_STOPPED":
      return say(`the stream stopped${data.error ? `: ${data.error}` : ""}`, true);
    case "EVENT_DROPPED":
      return say(`an event could not be read: ${data.error}`, true);
    case "SLOW_CONSUMER":
      return say(`this page lags: ${data.queued} of ${data.limit} events waiting`, true);
    case "ERROR":
      return say(data.message, true);
    default:
      return undefined; // acknowledgements and subscription notices need no display
  }
}

// --- market data ------------------------------------------------------------------------

function onQuote(quote) {
  if (quote.last_price) state.lastPrices.set(quote.contract_id, quote.last_price);
  if (!state.contract || quote.contract_id !== state.contract.id) {
    renderPositions();
    return;
  }
  const last = $("last-price");
  if (quote.last_price && quote.last_price !== last.textContent) {
    const before = Number(last.textContent);
    last.textContent = quote.last_price;
    last.className = `price ${Number.isNaN(before) ? "" : signClass(Number(quote.last_price) - before)}`;
    state.chartDirty = true;
  }
  if (quote.best_bid) $("bid").textContent = quote.best_bid;
  if (quote.best_ask) $("ask").textContent = quote.best_ask;
  if (quote.change !== null && quote.change !== undefined) {
    const change = $("change");
    const percent = quote.change_percent ? ` (${Number(quote.change_percent).toFixed(2)}%)` : "";
    change.textContent = `${quote.change}${percent}`;
    change.className = signClass(Number(quote.change));
  }
  renderPositions();
}

function onDepth(depth) {
  if (!state.contract || depth.contract_id !== state.contract.id) return;
  for (const update of depth.updates) {
    if (update.type === "RESET") {
      state.bids.clear();
      state.asks.clear();
      continue;
    }
    const side = BID_TYPES.has(update.type) ? state.bids : ASK_TYPES.has(update.type) ? state.asks : null;
    if (!side) continue;
    if (update.volume === 0) side.delete(update.price);
    else side.set(update.price, update.volume);
  }
  renderBook();
}

function renderBook() {
  const byPrice = (a, b) => Number(a[0]) - Number(b[0]);
  const asks = [...state.asks].sort(byPrice).slice(0, BOOK_LEVELS).reverse();
  const bids = [...state.bids].sort(byPrice).reverse().slice(0, BOOK_LEVELS);
  const rows = [];
  asks.forEach(([price, volume], i) => {
    const row = document.createElement("tr");
    cell(row, "");
    cell(row, price);
    cell(row, volume, "ask");
    if (i === asks.length - 1) row.className = "spread";
    rows.push(row);
  });
  for (const [price, volume] of bids) {
    const row = document.createElement("tr");
    cell(row, volume, "bid");
    cell(row, price);
    cell(row, "");
    rows.push(row);
  }
  replaceRows($("book"), rows);
}

function periodMs() {
  return state.minutes * 60000;
}

function onTrade(trade) {
  if (!state.contract || trade.contract_id !== state.contract.id) return;
  const price = Number(trade.price);
  const at = trade.timestamp ? Date.parse(trade.timestamp) : Date.now();
  const start = Math.floor(at / periodMs()) * periodMs();
  const bars = state.bars;
  const forming = bars[bars.length - 1];
  if (forming && forming.start === start) {
    forming.high = Math.max(forming.high, price);
    forming.low = Math.min(forming.low, price);
    forming.close = price;
    forming.volume += trade.volume;
  } else if (!forming || forming.start < start) {
    bars.push({ start, open: price, high: price, low: price, close: price, volume: trade.volume });
    if (bars.length > MAX_BARS) bars.splice(0, bars.length - MAX_BARS);
  }
  state.chartDirty = true;
}

async function loadBars() {
  if (!state.contract) return;
  const contract = state.contract;
  const minutes = state.minutes;
  const start = new Date(Date.now() - minutes * 60000 * BAR_COUNT).toISOString();
  const answer = await api("GET", "/bars", {
    query: {
      contract_id: contract.id,
      unit: "MINUTE",
      unit_number: minutes,
      start,
      limit: BAR_COUNT,
      include_partial_bar: true,
    },
  });
  if (state.contract !== contract || state.minutes !== minutes) return; // a newer choice won
  const loaded = answer.bars.map((bar) => ({
    start: Date.parse(bar.time),
    open: Number(bar.open),
    high: Number(bar.high),
    low: Number(bar.low),
    close: Number(bar.close),
    volume: bar.volume,
  }));
  // Prints that arrived while the bars were read stay in the forming bar.
  const newer = state.bars.filter((bar) => !loaded.length || bar.start > loaded[loaded.length - 1].start);
  state.bars = [...loaded, ...newer];
  state.chartDirty = true;
}

async function selectSymbol(symbol) {
  const wanted = symbol.trim().toUpperCase();
  if (!wanted) return;
  const asked = ++state.symbolRequest;
  const contract = await api("GET", `/contracts/by-symbol/${encodeURIComponent(wanted)}`);
  if (asked !== state.symbolRequest) return; // a newer choice is on its way
  const before = state.contract;
  if (before && before.id !== contract.id) {
    const keepQuotes = state.positions.has(before.id);
    dropMarket(before.id, keepQuotes ? ["DEPTH", "TRADE"] : ["QUOTE", "DEPTH", "TRADE"]);
  }
  state.contract = contract;
  state.contracts.set(contract.id, contract);
  state.bids.clear();
  state.asks.clear();
  state.bars = [];
  renderBook();
  $("contract").textContent = `${contract.id} · ${contract.description} · tick ${contract.tick_size} = ${money.format(Number(contract.tick_value))}`;
  $("last-price").textContent = state.lastPrices.get(contract.id) || "–";
  $("last-price").className = "price";
  for (const id of ["bid", "ask", "change"]) $(id).textContent = "–";
  wantMarket(contract.id, ["QUOTE", "DEPTH", "TRADE"]);
  await loadBars();
}

// --- the chart ----------------------------------------------------------------------------

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const axis = 70;
  const bottom = 22;
  const step = 8;
  const visible = Math.max(1, Math.floor((width - axis) / step));
  const bars = state.bars.slice(-visible);
  canvas.dataset.bars = String(state.bars.length);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#8593a3";
  if (!bars.length) {
    ctx.fillText("no bars yet", 12, 20);
    return;
  }
  let low = Math.min(...bars.map((b) => b.low));
  let high = Math.max(...bars.map((b) => b.high));
  if (high === low) {
    high += 1;
    low -= 1;
  }
  const pad = (high - low) * 0.06;
  low -= pad;
  high += pad;
  const top = 10; // room for the highest label
  const plot = height - bottom - top;
  const y = (price) => top + ((high - price) / (high - low)) * plot;
  ctx.strokeStyle = "#2a3440";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 5; i += 1) {
    const price = low + ((high - low) * i) / 5;
    const at = Math.round(y(price)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(0, at);
    ctx.lineTo(width - axis, at);
    ctx.stroke();
    ctx.fillText(price.toFixed(2), width - axis + 6, at + 4);
  }
  bars.forEach((bar, i) => {
    const x = i * step + step / 2;
    const rising = bar.close >= bar.open;
    ctx.strokeStyle = ctx.fillStyle = rising ? "#26a269" : "#e0524f";
    ctx.beginPath();
    ctx.moveTo(Math.round(x) + 0.5, y(bar.high));
    ctx.lineTo(Math.round(x) + 0.5, y(bar.low));
    ctx.stroke();
    const top = y(Math.max(bar.open, bar.close));
    ctx.fillRect(Math.round(x) - 2, top, 5, Math.max(1, y(Math.min(bar.open, bar.close)) - top));
    if (i % 12 === 0) {
      ctx.fillStyle = "#8593a3";
      const label = new Date(bar.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
      ctx.fillText(label, x - 14, height - 6);
    }
  });
  const last = bars[bars.length - 1].close;
  const at = Math.round(y(last)) + 0.5;
  ctx.strokeStyle = "#4c9aff";
  ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.moveTo(0, at);
  ctx.lineTo(width - axis, at);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = "#4c9aff";
  ctx.fillRect(width - axis + 2, at - 8, axis - 4, 16);
  ctx.fillStyle = "#0f1419";
  ctx.fillText(String(last), width - axis + 6, at + 4);
}

function animate() {
  if (state.chartDirty) {
    state.chartDirty = false;
    drawChart();
  }
  requestAnimationFrame(animate);
}

// --- the account --------------------------------------------------------------------------

async function contractOf(contractId) {
  if (!state.contracts.has(contractId)) {
    state.contracts.set(contractId, null); // asked once at a time
    let found;
    try {
      found = await api("GET", `/contracts/${encodeURIComponent(contractId)}`);
    } catch (error) {
      state.contracts.delete(contractId); // asked again with the next position update
      throw error;
    }
    state.contracts.set(contractId, found);
    renderPositions();
  }
  return state.contracts.get(contractId);
}

function openPnl(position) {
  const contract = state.contracts.get(position.contract_id);
  const last = state.lastPrices.get(position.contract_id);
  if (!contract || !last || !position.side) return null;
  const ticks = (Number(last) - Number(position.average_price)) / Number(contract.tick_size);
  const direction = position.side === "LONG" ? 1 : -1;
  return ticks * Number(contract.tick_value) * position.size * direction;
}

function renderPositions() {
  let total = 0;
  let priced = true;
  const rows = [...state.positions.values()].map((position) => {
    const row = document.createElement("tr");
    row.dataset.contract = position.contract_id;
    cell(row, position.contract_display_name || position.contract_id);
    cell(row, position.side);
    cell(row, position.size);
    cell(row, position.average_price);
    cell(row, state.lastPrices.get(position.contract_id));
    const pnl = openPnl(position);
    if (pnl === null) priced = false;
    else total += pnl;
    cell(row, pnl === null ? null : money.format(pnl), pnl === null ? "" : signClass(pnl));
    return row;
  });
  replaceRows($("positions"), rows);
  const open = $("open-pnl");
  open.textContent = priced ? money.format(total) : "–";
  open.className = priced ? signClass(total) : "";
}

function onPosition(position) {
  if (!state.account || position.account_id !== state.account.id) return;
  if (position.size === 0) {
    state.positions.delete(position.contract_id);
  } else {
    state.positions.set(position.contract_id, position);
    wantMarket(position.contract_id, ["QUOTE"]); // to mark it
    contractOf(position.contract_id).catch(failed);
  }
  renderPositions();
}

function renderOrders() {
  const readOnly = !state.ready || state.ready.read_only;
  const rows = [...state.orders.values()]
    .sort((a, b) => b.id - a.id)
    .map((order) => {
      const row = document.createElement("tr");
      row.dataset.order = String(order.id);
      cell(row, order.id);
      cell(row, order.contract_id);
      cell(row, order.side);
      cell(row, order.type);
      cell(row, order.fill_volume ? `${order.fill_volume}/${order.size}` : order.size);
      cell(row, order.limit_price || order.stop_price || order.trail_price);
      cell(row, order.status);
      const actions = cell(row, "");
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.textContent = "Cancel";
      cancel.dataset.testid = `cancel-${order.id}`;
      cancel.disabled = readOnly || order.status === "PENDING_CANCELLATION";
      cancel.addEventListener("click", () => cancelOrder(order, cancel));
      actions.appendChild(cancel);
      return row;
    });
  replaceRows($("orders"), rows);
}

function onOrder(order) {
  if (!state.account || order.account_id !== state.account.id) return;
  if (WORKING.has(order.status)) state.orders.set(order.id, order);
  else state.orders.delete(order.id);
  renderOrders();
}

async function cancelOrder(order, button) {
  button.disabled = true;
  try {
    await api("DELETE", `/orders/${order.id}`, { query: { account_id: order.account_id } });
    say(`cancel of order ${order.id} sent`);
  } catch (error) {
    failed(error);
  } finally {
    await loadOrders().catch(failed);
  }
}

function fillCost(fill) {
  return Number(fill.fees) + Number(fill.commissions || 0);
}

function renderFills() {
  // The day's figures come from its fills, each counted once however it arrived.
  const fills = [...state.dayFills.values()].filter((f) => !f.voided);
  const realized = fills.reduce((sum, f) => sum + Number(f.profit_and_loss || 0) - fillCost(f), 0);
  $("day-pnl").textContent = money.format(realized);
  $("day-pnl").className = signClass(realized);
  $("day-fills").textContent = String(fills.length);
  const newest = [...state.dayFills.values()].sort((a, b) => b.id - a.id).slice(0, MAX_FILLS);
  const rows = newest.map((fill) => {
    const row = document.createElement("tr");
    row.dataset.fill = String(fill.id);
    cell(row, timeText(fill.created_at));
    cell(row, fill.contract_id);
    cell(row, fill.side);
    cell(row, fill.size);
    cell(row, fill.price);
    const pnl = fill.profit_and_loss === null ? null : Number(fill.profit_and_loss);
    cell(row, pnl === null ? null : money.format(pnl), pnl === null ? "" : signClass(pnl));
    cell(row, fill.order_id);
    return row;
  });
  replaceRows($("fills"), rows);
}

function onFill(fill) {
  if (!state.account || fill.account_id !== state.account.id) return;
  if (state.dayStart !== null && Date.parse(fill.created_at) < state.dayStart) return;
  state.dayFills.set(fill.id, fill);
  if (state.dayFills.size > MAX_DAY_FILLS) state.dayFills.delete(state.dayFills.keys().next().value);
  renderFills();
  riskSoon();
}

function showBalance(balance) {
  $("balance").textContent = money.format(Number(balance));
}

function onAccount(account) {
  if (!state.account || account.id !== state.account.id) return;
  state.account = account;
  showBalance(account.balance);
}

async function loadOrders() {
  const account = state.account;
  const { orders } = await api("GET", "/orders/open", { query: { account_id: account.id } });
  if (!sameAccount(account)) return;
  state.orders = new Map(orders.map((order) => [order.id, order]));
  renderOrders();
}

async function loadPositions() {
  const account = state.account;
  const { positions } = await api("GET", "/positions", { query: { account_id: account.id } });
  if (!sameAccount(account)) return;
  state.positions = new Map(positions.filter((p) => p.size).map((p) => [p.contract_id, p]));
  for (const position of state.positions.values()) {
    wantMarket(position.contract_id, ["QUOTE"]);
    await contractOf(position.contract_id);
  }
  renderPositions();
}

async function loadDayPnl() {
  const account = state.account;
  const day = await api("GET", "/pnl", { query: { account_id: account.id } });
  const { trades } = await api("GET", "/trades", { query: { account_id: account.id, start: day.start } });
  if (!sameAccount(account)) return;
  state.dayStart = Date.parse(day.start);
  for (const [id, fill] of state.dayFills) {
    if (Date.parse(fill.created_at) < state.dayStart) state.dayFills.delete(id); // yesterday's
  }
  for (const fill of trades.slice(-MAX_DAY_FILLS)) state.dayFills.set(fill.id, fill);
  renderFills();
}

function limitText(left, limit) {
  if (left === null || left === undefined) return "no limit";
  return limit === null || limit === undefined
    ? money.format(Number(left))
    : `${money.format(Number(left))} of ${money.format(Number(limit))}`;
}

function showRisk(risk) {
  const ruled = risk.rules !== null;
  $("risk").hidden = !ruled;
  $("no-rules").hidden = ruled;
  if (!ruled) return;
  $("risk-rules").textContent = `${risk.rules} · ${risk.status}`;
  $("risk-daily").textContent = limitText(risk.daily_loss_remaining, risk.daily_loss_limit);
  $("risk-max").textContent = `${limitText(risk.max_loss_remaining, risk.max_loss)} (floor ${money.format(Number(risk.floor))})`;
  $("risk-contracts").textContent =
    risk.position_remaining === null ? "no limit" : `${Number(risk.position_remaining)} of ${Number(risk.max_contracts)}`;
  const findings = [...risk.breaches, ...risk.warnings];
  const shown = $("risk-findings");
  shown.textContent = findings.length ? findings.join("; ") : "none";
  shown.className = risk.breaches.length ? "down" : risk.warnings.length ? "warn" : "";
}

async function loadRisk() {
  const account = state.account;
  const risk = await api("GET", "/risk", { query: { account_id: account.id } });
  if (sameAccount(account)) showRisk(risk);
}

function riskSoon() {
  clearTimeout(riskSoon.timer);
  riskSoon.timer = setTimeout(() => loadRisk().catch(failed), 500);
}

async function reloadAccount() {
  if (!state.account) return;
  try {
    const { accounts } = await api("GET", "/accounts");
    const current = accounts.find((a) => a.id === state.account.id);
    if (current) onAccount(current);
    await Promise.all([loadOrders(), loadPositions(), loadDayPnl(), loadRisk()]);
  } catch (error) {
    failed(error);
  }
}

function sameAccount(account) {
  return state.account !== null && state.account.id === account.id;
}

function chooseAccount(id) {
  const account = state.accounts.find((a) => a.id === id) || state.accounts[0];
  if (state.account && state.account.id !== account.id) {
    send({
      action: "unsubscribe",
      user_data: { provider_account_ids: [state.account.id], data_types: USER_TYPES },
    });
  }
  state.account = account;
  // Nothing of the account shown before stays on screen, nor its cancel buttons.
  state.orders = new Map();
  state.positions = new Map();
  state.dayFills = new Map();
  state.dayStart = null;
  renderOrders();
  renderPositions();
  renderFills();
  $("risk").hidden = true;
  $("no-rules").hidden = true;
  sessionStorage.setItem(ACCOUNT_KEY, String(account.id));
  showBalance(account.balance);
  send({
    action: "subscribe",
    user_data: { provider_account_ids: [account.id], data_types: USER_TYPES },
  });
  return reloadAccount();
}

// --- the ticket ---------------------------------------------------------------------------

function newTag() {
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return `cockpit-${Date.now().toString(36)}-${random}`;
}

function setTicketEnabled(enabled) {
  for (const control of $("order-ticket").elements) control.disabled = !enabled;
  $("order-price").disabled = !enabled || $("order-type").value !== "LIMIT";
  $("order-submit").disabled = !enabled || state.sending;
}

async function placeOrder(event) {
  event.preventDefault();
  if (!state.account || !state.contract || state.sending) return;
  const form = new FormData($("order-ticket"));
  const order = {
    account_id: state.account.id,
    contract_id: state.contract.id,
    side: form.get("side"),
    type: form.get("type"),
    size: Number.parseInt(String(form.get("size")), 10),
    custom_tag: newTag(),
  };
  if (order.type === "LIMIT") order.limit_price = String(form.get("limit_price") || "").trim();
  const result = $("ticket-result");
  const submit = $("order-submit");
  state.sending = true; // one click, one order
  submit.disabled = true;
  result.className = "muted";
  result.textContent = "sending…";
  try {
    const placed = await api("POST", "/orders", { body: order });
    result.textContent = `${order.side} ${order.size} ${order.type}: order ${placed.order_id} ${placed.status}`;
    if (placed.order) onOrder(placed.order);
  } catch (error) {
    result.className = "error";
    if (error instanceof ApiError && error.status === 503 && error.body && error.body.status === "uncertain") {
      result.textContent = `outcome unknown: look for tag ${order.custom_tag} in orders and fills before sending again`;
    } else if (error instanceof ApiError) {
      result.textContent = `refused (${error.status}): ${error.message}`;
    } else if (error instanceof Unauthorized) {
      failed(error);
    } else {
      result.textContent = `outcome unknown (${error}): look for tag ${order.custom_tag} before sending again`;
    }
  } finally {
    state.sending = false;
    submit.disabled = Boolean(state.ready && state.ready.read_only);
  }
}

// --- start --------------------------------------------------------------------------------

async function boot() {
  const ready = await api("GET", "/ready", { allow: [503] });
  showReady(ready);
  const { accounts } = await api("GET", "/accounts");
  if (!accounts.length) throw new Error("this login sees no active account");
  state.accounts = accounts;
  const select = $("account");
  select.replaceChildren(
    ...accounts.map((account) => {
      const option = document.createElement("option");
      option.value = String(account.id);
      option.textContent = `${account.name} (${account.id})`;
      return option;
    }),
  );
  const remembered = Number(sessionStorage.getItem(ACCOUNT_KEY));
  const first = accounts.find((a) => a.id === remembered) || accounts.find((a) => a.can_trade) || accounts[0];
  select.value = String(first.id);
  $("token-form").hidden = true;
  $("cockpit").hidden = false;
  setTicketEnabled(!ready.read_only);
  if (ready.read_only) $("ticket-result").textContent = "this service is read-only";
  connectStream();
  await selectSymbol($("symbol").value);
  await chooseAccount(first.id);
  if (!state.timersStarted) {
    state.timersStarted = true; // a second boot (a token entered again) adds none
    setInterval(refreshReady, READY_EVERY_MS);
    setInterval(() => state.account && loadRisk().catch(failed), RISK_EVERY_MS);
    // The trading day turns at 17:00 Chicago time: its figures are read again each minute.
    setInterval(() => state.account && loadDayPnl().catch(failed), DAY_EVERY_MS);
  }
}

function start() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const given = $("token-input").value.trim();
    if (!given) return;
    sessionStorage.setItem(TOKEN_KEY, given);
    state.token = given;
    $("token-input").value = "";
    boot().catch(failed);
  });
  $("symbol-form").addEventListener("submit", (event) => {
    event.preventDefault();
    selectSymbol($("symbol").value).catch(failed);
  });
  $("timeframe").addEventListener("change", () => {
    state.minutes = Number($("timeframe").value);
    state.bars = [];
    loadBars().catch(failed);
  });
  $("account").addEventListener("change", () => chooseAccount(Number($("account").value)));
  $("order-type").addEventListener("change", () => setTicketEnabled(!state.ready.read_only));
  $("order-ticket").addEventListener("submit", (event) => placeOrder(event));
  window.addEventListener("resize", () => (state.chartDirty = true));
  requestAnimationFrame(animate);
  state.token = tokenFromFragment();
  if (!state.token) {
    askToken();
    return;
  }
  boot().catch(failed);
}

start();
