"""Command line: `eventapi serve` and `eventapi seed`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from pydantic import ValidationError

from eventapi.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "EVENTAPI_" + "_".join(str(p) for p in err["loc"]).upper()
        sys.exit(f"eventapi: invalid setting {name}: {err['msg']}")


def serve(argv: list[str] | None = None) -> None:
    settings = _settings()
    parser = argparse.ArgumentParser(prog="eventapi serve", description="Run the API server.")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--reload", action="store_true", help="restart on code changes")
    args = parser.parse_args(argv)

    import uvicorn

    uvicorn.run(
        "eventapi.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        log_level=settings.log_level,
    )


def seed(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="eventapi seed",
        description="Seed the database. Without options, shows an interactive menu.",
    )
    parser.add_argument(
        "--insert-samples",
        dest="choices",
        action="append_const",
        const="1",
        help="insert the sample events (existing ids are left alone)",
    )
    parser.add_argument(
        "--clear", dest="choices", action="append_const", const="2", help="delete all events"
    )
    parser.add_argument(
        "--count",
        dest="choices",
        action="append_const",
        const="3",
        help="print the number of events",
    )
    args = parser.parse_args(argv)
    settings = _settings()

    from eventapi.seeding import run

    sys.exit(asyncio.run(run(settings, args.choices)))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"serve": serve, "seed": seed}
    if not argv or argv[0] not in commands:
        sys.exit("usage: eventapi {serve,seed} [options]   (eventapi COMMAND --help for more)")
    commands[argv[0]](argv[1:])
