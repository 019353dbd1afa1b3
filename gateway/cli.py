"""The `oms-gateway` command; the only place that reads environment variables."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from gateway.observability.logs import configure_logging
from gateway.observability.tracing import tracing_unavailable
from gateway.observability.version import VERSION
from gateway.server.protocol import GatewayConfig, make_server
from gateway.settings import ENV_VARS, LOG_LEVELS, Secret, Settings

log = logging.getLogger("gateway")


# Settings that are not flags (nor documented for operators): the CLI derives them itself.
INTERNAL_SETTINGS = frozenset({"metrics_multiprocess"})
_CHOICES: dict[str, tuple[str, ...]] = {
    "env": ("development", "production"),
    "log_format": ("json", "text"),
    "log_level": LOG_LEVELS,
}
# What a setting means, for `serve --help`; the variable and the default are derived from
# Settings, so the help cannot drift from what the gateway reads.
_MEANING = {
    "upstream_url": "OMS base URL (absolute http or https)",
    "token": "service token, used when a client sends no Authorization",
    "host": "bind address",
    "port": "bind port",
    "env": "development or production",
    "upstream_max_limit": "largest `limit` sent upstream in one call",
    "max_page_size": "most items one orderItems field may ask for",
    "default_page_size": "page size when neither first nor pageSize is given",
    "detail_concurrency": "detail calls in flight per operation",
    "workers": "worker processes (metrics are summed across them)",
    "redis_url": "Redis for shared APQ documents and response cache",
    "log_format": "json or text (key=value)",
    "log_level": "least severe level logged",
    "tracing": "OpenTelemetry spans over OTLP (needs the otel extra)",
    "cors_origins": "comma-separated origins allowed cross-origin; empty: CORS off",
    "cors_allow_headers": "comma-separated request headers allowed cross-origin",
}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def describe_default(value: Any) -> str:
    """A default as the help text and the README show it."""
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, typed from its field; the help names its variable and default."""
    for f in dataclasses.fields(Settings):
        if f.name in INTERNAL_SETTINGS:
            continue
        kind = str(f.type)
        default = describe_default(f.default)
        meaning = _MEANING.get(f.name)
        help_text = f"{meaning}; " if meaning else ""
        help_text += f"env {ENV_VARS[f.name]}, default {default}".replace("%", "%%")
        options: dict[str, Any] = {"help": help_text, "dest": f.name}
        if kind == "bool":
            options["action"] = argparse.BooleanOptionalAction
        elif kind in ("int", "float"):
            options["type"] = int if kind == "int" else float
            options["metavar"] = "N"
        else:
            options["metavar"] = "TEXT" if f.name not in ("upstream_url", "redis_url") else "URL"
        if f.name in _CHOICES:
            options["choices"] = _CHOICES[f.name]
            options.pop("metavar", None)
            if f.name == "log_level":
                options["type"] = str.upper
        parser.add_argument(flag(f.name), **options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oms-gateway", description="GraphQL gateway for the Akinon OMS order-item API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the gateway in front of an OMS upstream",
        description="Run the gateway. Every setting is a flag and an OMS_* environment "
        "variable; flags win over variables.",
    )
    _add_setting_flags(serve)

    demo = commands.add_parser(
        "demo", help="run the gateway on the embedded fake OMS upstream, with GraphiQL"
    )
    demo.add_argument("--port", type=int, default=8000, help="gateway port (default 8000)")
    demo.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")

    fake = commands.add_parser("fake-upstream", help="run only the embedded fake OMS upstream")
    fake.add_argument("--port", type=int, default=8001)
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument(
        "--max-limit",
        type=int,
        default=100,
        help="the fake's page cap, like DRF's max_page_size (default 100)",
    )

    commands.add_parser("export-schema", help="print the schema as SDL")
    return parser


def _settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    names = [f.name for f in dataclasses.fields(Settings) if f.name not in INTERNAL_SETTINGS]
    return Settings.from_env(environ, **{n: getattr(args, n, None) for n in names})


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _server(app: object, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
    return uvicorn.Server(config)


def _curl_command(url: str) -> str:
    """A curl line that runs as printed (the demo answers with its service token)."""
    body = json.dumps({"query": '{ orderItem(id: 1) { price state { name(locale: "tr") } } }'})
    return f"curl -s {url} -H 'content-type: application/json' -d {shlex.quote(body)}"


def _run_demo(host: str, port: int) -> None:
    from gateway.fake_upstream.app import DEMO_TOKEN, create_fake_app
    from gateway.server.app import create_app
    from gateway.server.graphiql import EXAMPLE_QUERY

    upstream_port = _free_port("127.0.0.1")
    settings = Settings(
        upstream_url=f"http://127.0.0.1:{upstream_port}",
        token=Secret(DEMO_TOKEN),
        host=host,
        port=port,
        env="demo",
        allowed_hosts=f"127.0.0.1,localhost,{host}",
    )
    upstream = _server(create_fake_app(), "127.0.0.1", upstream_port)
    gateway = make_server(create_app(settings), settings, log_level="warning", lifespan="on")
    url = f"http://{host}:{port}/graphql"
    # The fake OMS runs in a thread, where uvicorn installs no signal handlers: Ctrl+C reaches
    # the gateway's server in the main thread, and stopping it stops both.
    thread = threading.Thread(target=upstream.run, name="fake-oms", daemon=True)
    thread.start()
    print(
        f"Fake OMS upstream on http://127.0.0.1:{upstream_port} (token {DEMO_TOKEN!r}, demo only)"
    )
    print(f"GraphiQL: {url}")
    print("Try this query there:\n")
    print(EXAMPLE_QUERY)
    print("Or this one with curl:\n")
    print(_curl_command(url) + "\n")
    sys.stdout.flush()
    try:
        gateway.run()
    finally:
        upstream.should_exit = True
        thread.join(timeout=10)


_SETTINGS_FOR_WORKERS = "OMS_GATEWAY_RESOLVED_SETTINGS"


def _build_app(settings: Settings) -> Any:
    from gateway.observability.tracing import configure_otlp_exporter
    from gateway.server.app import create_app

    configure_logging(settings.log_format, settings.log_level)
    provider = configure_otlp_exporter() if settings.tracing else None
    return create_app(settings, tracer_provider=provider)


def worker_app() -> Any:
    """The app factory each worker process calls (`--workers N`): this is its entry point."""
    fields = orjson.loads(os.environ[_SETTINGS_FOR_WORKERS])
    app = _build_app(Settings(**fields))
    _settle_heap()
    return app


# Objects allocated between two young collections. Python's default (700) runs one every few
# dozen items an answer builds; each operation's objects die with it, so a larger young
# generation costs a few MB at most and saves most of those collections (BENCHMARKS.md).
_YOUNG_COLLECTION_THRESHOLD = 20_000


def _settle_heap() -> None:
    """Once the app is built: move everything loaded so far (modules, the schema, compiled
    plans) out of the collector's sight, so later collections walk only what requests make."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, older, oldest)


def _serve_one(settings: Settings) -> None:
    """One process: the gateway, and its metrics listener when `metrics_port` is set."""
    from gateway.server.app import create_metrics_app

    app = _build_app(settings)
    _settle_heap()
    gateway = make_server(app, settings, log_config=None)
    if settings.metrics_enabled and settings.metrics_port:
        metrics = make_server(
            create_metrics_app(app),
            settings,
            port=settings.metrics_port,
            log_config=None,
            lifespan="off",
        )

        async def both() -> None:
            task = asyncio.create_task(metrics.serve())
            try:
                await gateway.serve()
            finally:
                metrics.should_exit = True
                await task

        # On the loop uvicorn would pick (uvloop with uvicorn[standard]), as `gateway.run` does.
        with asyncio.Runner(loop_factory=gateway.config.get_loop_factory()) as runner:
            runner.run(both())
    else:
        gateway.run()
    if not gateway.started:
        raise SystemExit(3)  # as uvicorn.run: the port could not be bound, or startup failed


def port_in_use(host: str, port: int) -> str | None:
    """Bind once before starting, so a busy port is one line rather than uvicorn's traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def _serve(settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)
    url = f"http://{settings.host}:{settings.port}"
    log.info(
        "oms-gateway %s listening on %s with %d worker(s)", VERSION, url, settings.workers,
        extra={"url": url, "workers": settings.workers, "version": VERSION},
    )  # fmt: skip
    try:
        if settings.workers == 1:
            _serve_one(settings)
        else:
            _serve_workers(settings)
    except KeyboardInterrupt:
        pass  # as uvicorn.run: Ctrl+C after a graceful shutdown is a clean exit


def _serve_workers(settings: Settings) -> None:
    # Workers are fresh processes: hand them the resolved settings, and let Prometheus sum
    # their metrics through files in a shared directory (ours to remove when we made it).
    made = None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        # A directory that outlives the process (a pod's emptyDir across container restarts)
        # holds the files of workers that are gone: start from none, as prometheus_client asks.
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        made = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="oms-gateway-metrics-"
        )
    settings = settings.replace(metrics_multiprocess=True)
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    os.environ[_SETTINGS_FOR_WORKERS] = orjson.dumps(fields).decode()
    try:
        # uvicorn.run's own path for workers, with the gateway's config (its protocol and limits).
        from uvicorn.supervisors import Multiprocess

        config = GatewayConfig(
            "gateway.cli:worker_app",
            settings,
            factory=True,
            workers=settings.workers,
            log_config=None,
        )
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _fail(message: str, code: int) -> int:
    print(f"oms-gateway: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        return _command(args, environ)
    except KeyboardInterrupt:
        # uvicorn has already shut down gracefully and re-raised the signal: one line, the
        # shell's exit status for SIGINT.
        return _fail("stopped (interrupted)", 130)


def _command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if args.command == "export-schema":
        from schema import make_schema

        sys.stdout.write(make_schema().as_str() + "\n")
        return 0
    if args.command == "fake-upstream":
        from gateway.fake_upstream.app import FakeOms, create_fake_app

        if problem := port_in_use(args.host, args.port):
            return _fail(problem, 1)
        app = create_fake_app(FakeOms(max_limit=args.max_limit))
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    if args.command == "demo":
        if problem := port_in_use(args.host, args.port):
            return _fail(problem, 1)
        configure_logging("text")
        _run_demo(args.host, args.port)
        return 0
    try:
        settings = _settings_from(args, environ)
    except ValueError as exc:
        return _fail(str(exc), 2)
    if settings.tracing and (problem := tracing_unavailable()):
        return _fail(problem, 2)
    if problem := port_in_use(settings.host, settings.port):
        return _fail(problem, 1)
    _serve(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
