"""The `oms-gateway` command; the only place that reads environment variables."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import uvicorn

from gateway.logs import configure_logging
from gateway.server import GatewayConfig, make_server
from gateway.settings import ENV_VARS, Secret, Settings

DEMO_UPSTREAM_PORT_OFFSET = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oms-gateway", description="GraphQL gateway for the Akinon OMS order-item API."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway in front of an OMS upstream")
    serve.add_argument("--upstream-url", help=f"OMS base URL (env {ENV_VARS['upstream_url']})")
    serve.add_argument("--host", help=f"bind address (env {ENV_VARS['host']}, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help=f"bind port (env {ENV_VARS['port']}, default 8000)")
    serve.add_argument(
        "--token", help=f"service token used when a client sends none (env {ENV_VARS['token']})"
    )
    serve.add_argument("--env", choices=("development", "production"), help="env OMS_ENV")
    serve.add_argument("--upstream-max-limit", type=int, help="env OMS_UPSTREAM_MAX_LIMIT")
    serve.add_argument("--max-page-size", type=int, help="env OMS_MAX_PAGE_SIZE")
    serve.add_argument(
        "--upstream-connect-timeout", type=float, help="seconds; env OMS_UPSTREAM_CONNECT_TIMEOUT"
    )
    serve.add_argument(
        "--upstream-read-timeout", type=float, help="seconds; env OMS_UPSTREAM_READ_TIMEOUT"
    )
    serve.add_argument("--workers", type=int, help="worker processes (env OMS_WORKERS, default 1)")
    serve.add_argument("--redis-url", help="shared APQ/response-cache store (env OMS_REDIS_URL)")
    serve.add_argument("--log-format", choices=("json", "text"), help="env OMS_LOG_FORMAT")

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
    names = (
        "upstream_url", "host", "port", "token", "env", "upstream_max_limit", "max_page_size",
        "upstream_connect_timeout", "upstream_read_timeout", "workers", "redis_url", "log_format",
    )  # fmt: skip
    return Settings.from_env(environ, **{n: getattr(args, n, None) for n in names})


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _server(app: object, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
    return uvicorn.Server(config)


async def _run_demo(host: str, port: int) -> None:
    from gateway.app import create_app
    from gateway.fake_upstream.app import DEMO_TOKEN, create_fake_app
    from gateway.graphiql import EXAMPLE_QUERY

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
    print(
        f"Fake OMS upstream on http://127.0.0.1:{upstream_port} (token {DEMO_TOKEN!r}, demo only)"
    )
    print(f"GraphiQL: http://{host}:{port}/graphql")
    print("Try this query there, or with curl:\n")
    print(EXAMPLE_QUERY)
    sys.stdout.flush()
    await asyncio.gather(upstream.serve(), gateway.serve())


_SETTINGS_FOR_WORKERS = "OMS_GATEWAY_RESOLVED_SETTINGS"


def _build_app(settings: Settings) -> Any:
    from gateway.app import create_app
    from gateway.tracing import configure_otlp_exporter

    configure_logging(settings.log_format)
    provider = configure_otlp_exporter() if settings.tracing else None
    return create_app(settings, tracer_provider=provider)


def worker_app() -> Any:
    """The app factory each worker process calls (`--workers N`): this is its entry point."""
    fields = orjson.loads(os.environ[_SETTINGS_FOR_WORKERS])
    return _build_app(Settings(**fields))


def _serve_one(settings: Settings) -> None:
    """One process: the gateway, and its metrics listener when `metrics_port` is set."""
    from gateway.app import create_metrics_app

    app = _build_app(settings)
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


def _serve(settings: Settings) -> None:
    if settings.workers == 1:
        _serve_one(settings)
        return
    # Workers are fresh processes: hand them the resolved settings, and let Prometheus sum
    # their metrics through files in a shared directory.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="oms-gateway-metrics-")
    settings = settings.replace(metrics_multiprocess=True)
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    os.environ[_SETTINGS_FOR_WORKERS] = orjson.dumps(fields).decode()
    # uvicorn.run's own path for workers, with the gateway's config (its protocol and limits).
    from uvicorn.supervisors import Multiprocess

    config = GatewayConfig(
        "gateway.cli:worker_app", settings, factory=True, workers=settings.workers, log_config=None
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    if args.command == "export-schema":
        from schema import schema

        sys.stdout.write(schema.as_str() + "\n")
        return 0
    if args.command == "fake-upstream":
        from gateway.fake_upstream.app import FakeOms, create_fake_app

        app = create_fake_app(FakeOms(max_limit=args.max_limit))
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    if args.command == "demo":
        configure_logging("text")
        asyncio.run(_run_demo(args.host, args.port))
        return 0
    try:
        settings = _settings_from(args, environ)
    except ValueError as exc:
        print(f"oms-gateway: {exc}", file=sys.stderr)
        return 2
    _serve(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
