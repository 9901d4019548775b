"""The ``tradeforge`` command: ``tradeforge sim`` runs the embedded gateway simulator."""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Sequence

import anyio

from .sim.server import SimServer
from .sim.simulation import SimConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradeforge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser(
        "sim", help="run the ProjectX gateway simulator (REST and both hubs) on one port"
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8123, help="port (default 8123, 0 picks one)")
    sim.add_argument("--seed", type=int, default=7, help="market seed (default 7)")
    sim.add_argument(
        "--rate", type=float, default=20.0, help="market updates per second per contract (20)"
    )
    sim.add_argument("--certfile", help="serve TLS with this certificate (PEM)")
    sim.add_argument("--keyfile", help="private key of --certfile (PEM)")
    sim.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return parser


def _banner(server: SimServer) -> str:
    config = server.config
    accounts = ", ".join(f"{a.id} ({a.name})" for a in config.accounts)
    return "\n".join(
        [
            "TradeForge gateway simulator",
            f"  REST API     {server.api_url}",
            f"  user hub     {server.user_hub_url}",
            f"  market hub   {server.market_hub_url}",
            f"  username     {config.username}",
            f"  API key      {config.api_key}",
            f"  accounts     {accounts}",
            f"  seed {config.seed}, {config.rate:g} market updates/s per contract",
            "Ctrl-C stops it.",
        ]
    )


async def _run_sim(args: argparse.Namespace) -> None:
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    server = SimServer(
        SimConfig(seed=args.seed, rate=args.rate),
        host=args.host,
        port=args.port,
        ssl_context=context,
    )
    async with server:
        print(_banner(server), flush=True)
        await anyio.sleep_forever()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``tradeforge`` command."""
    args = _parser().parse_args(argv)
    if args.rate <= 0:
        sys.exit("--rate must be positive")
    try:
        anyio.run(_run_sim, args, backend=args.backend)
    except KeyboardInterrupt:
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
