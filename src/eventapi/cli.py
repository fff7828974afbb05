"""Command line: `eventapi serve`, `seed`, `import` and `export`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from pydantic import ValidationError

from eventapi.settings import DEFAULT_DATABASE_URL, Settings, sqlite_path, unknown_variables


def _settings() -> Settings:
    for line in unknown_variables(os.environ):
        print(f"eventapi: warning: {line}", file=sys.stderr)
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "EVENTAPI_" + "_".join(str(p) for p in err["loc"]).upper()
        sys.exit(f"eventapi: invalid setting {name}: {err['msg']}")


def _check_store(settings: Settings) -> None:
    """Fail before the server starts, in one line, if the SQLite file cannot be used."""
    if settings.store_backend == "sqlite":
        from eventapi.errors import StoreUnavailable
        from eventapi.storage.sqlite import prepare

        try:
            # The default file's folder is ours to make; a folder someone named must exist
            # (a typo in a path should not quietly start an empty database elsewhere).
            made = settings.database_url == DEFAULT_DATABASE_URL
            prepare(sqlite_path(settings.database_url), make_folder=made)
        except StoreUnavailable as exc:
            sys.exit(f"eventapi: EVENTAPI_DATABASE_URL: {exc.detail}")


def serve(argv: list[str] | None = None) -> None:
    settings = _settings()
    parser = argparse.ArgumentParser(prog="eventapi serve", description="Run the API server.")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--reload", action="store_true", help="restart on code changes")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (needs Redis)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    refusal = settings.refusal()
    if refusal is not None:  # the app would refuse too (install_access), less readably
        sys.exit(f"eventapi: {refusal}")
    from eventapi.ratelimit.rates import policies_for

    try:
        policies_for(settings)  # a bad limit: one line here, not a traceback from uvicorn
    except ValueError as exc:
        sys.exit(f"eventapi: {exc}")
    _check_store(settings)
    if args.workers > 1:
        _share_cache_between_workers()

    import uvicorn

    from eventapi.http.connections import PROTOCOL
    from eventapi.logs import log_config

    uvicorn.run(
        "eventapi.app:app_from_env",
        # uvicorn's loggers and ours on one handler, with request ids; the app writes the
        # per-request line itself (logs.RequestLog), so uvicorn's access log is off.
        log_config=log_config(settings.log_level, settings.log_format),
        access_log=False,
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        workers=args.workers,
        log_level=settings.log_level,
        # Idle and slow-header connections are closed, not kept for as long as a client likes.
        http=PROTOCOL,
        timeout_keep_alive=settings.keepalive_timeout,
        # SIGTERM drains: no new connections, the requests in flight finish (bounded).
        timeout_graceful_shutdown=settings.shutdown_timeout,
        # X-Forwarded-For/-Proto only from EVENTAPI_TRUSTED_PROXIES. uvicorn's own default
        # trusts 127.0.0.1, so any local process could pose as any client.
        proxy_headers=bool(settings.trusted_proxy_list),
        forwarded_allow_ips=list(settings.trusted_proxy_list),
    )


def _share_cache_between_workers() -> None:
    """Workers must share one cache, or a write in one leaves stale entries in the others."""
    from eventapi.cache.factory import resolve_cache_url

    url = asyncio.run(resolve_cache_url(_settings()))
    if url.startswith("memory:"):
        sys.exit(
            "eventapi: --workers needs a shared cache: the memory:// cache lives inside one "
            "process, so a write in one worker would leave stale entries in the others. "
            "Set EVENTAPI_CACHE_URL=redis://... (or none to turn caching off)."
        )
    # Every worker must use the same cache, even if auto-detection would differ later.
    os.environ["EVENTAPI_CACHE_URL"] = url


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
    _check_store(settings)

    from eventapi.errors import StoreUnavailable
    from eventapi.seeding import run

    try:
        sys.exit(asyncio.run(run(settings, args.choices)))
    except KeyboardInterrupt:
        # The menu's input thread may still hold stdin's lock; a normal interpreter exit
        # would abort on it, so leave at once (nothing is left to flush but stdout).
        sys.stdout.flush()
        os._exit(130)
    except StoreUnavailable as exc:
        sys.exit(f"eventapi: the database at {settings.safe_database_url} is unavailable: {exc}")


def import_events(argv: list[str] | None = None) -> None:
    from eventapi.transfer.formats import FORMATS

    parser = argparse.ArgumentParser(
        prog="eventapi import",
        description="Import events from a file: every row is checked first, and if any is "
        "invalid nothing is imported. Ids the database already holds are left as they are, "
        "so importing a file again adds nothing.",
    )
    parser.add_argument(
        "file",
        help="a JSON array (.json), JSON Lines (.jsonl, .ndjson) or CSV (.csv) file; "
        "- reads standard input (JSON Lines unless --format says otherwise)",
    )
    parser.add_argument("--format", choices=FORMATS, help="default: from the file's extension")
    args = parser.parse_args(argv)
    settings = _settings()
    _check_store(settings)
    from eventapi.transfer.commands import import_file

    sys.exit(import_file(settings, args.file, args.format))


def export_events(argv: list[str] | None = None) -> None:
    from eventapi.transfer.formats import FORMATS

    parser = argparse.ArgumentParser(
        prog="eventapi export",
        description="Write every event to standard output or a file, in a form "
        "`eventapi import` reads back.",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    parser.add_argument(
        "--format", choices=FORMATS, help="default: from the extension of -o, else jsonl"
    )
    args = parser.parse_args(argv)
    settings = _settings()
    _check_store(settings)
    from eventapi.transfer.commands import export_file

    sys.exit(export_file(settings, args.output, args.format))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"serve": serve, "seed": seed, "import": import_events, "export": export_events}
    if not argv or argv[0] not in commands:
        sys.exit(
            "usage: eventapi {serve,seed,import,export} [options]   "
            "(eventapi COMMAND --help for more)"
        )
    commands[argv[0]](argv[1:])
