"""``promptlake serve``: ingest over HTTP for services that do not import promptlake.

OTLP/HTTP traces (``gen_ai.*``, OpenInference and older emitters' spans become
generations), native JSON batches of generations and scores, API keys that map each
request to a principal under row-level security. Starlette and uvicorn come with the
``server`` extra (``pip install 'promptlake[server]'``); :mod:`.keys` needs neither.

    promptlake keys create --project support-bot --role writer
    promptlake serve --port 4318
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces \\
    OTEL_EXPORTER_OTLP_TRACES_HEADERS="Authorization=Bearer plk_..." python app.py
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError


def _require_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            f"promptlake serve needs the server extra ({exc.name} is missing):"
            " pip install 'promptlake[server]'"
        ) from None


def serve(
    host: str = "127.0.0.1",
    port: int = 4318,
    *,
    url: str | None = None,
    log_level: str = "info",
    **config: Any,
) -> None:
    """Run the server until SIGINT/SIGTERM; on shutdown everything acknowledged or
    submitted is written before the process exits. ``config``: :class:`.app.ServerConfig`."""
    _require_extra()
    import uvicorn

    from ..client import connect
    from .app import ServerConfig, create_app

    lake = connect(url)
    app = create_app(lake, ServerConfig(**config), own_lake=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=30,
        access_log=False,
    )
