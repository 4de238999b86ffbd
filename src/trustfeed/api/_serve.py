"""``trustfeed serve``: the platform on the embedded default (or the URLs the settings name).

On first start it creates the custodian's keys, the stores and a bootstrap
custodian token in ``<home>/keys/admin.token`` (mode 0600); use that token
to issue the others (``POST /v1/custodian/tokens`` or the console).
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from trustfeed.errors import TrustfeedError


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    log_url: Annotated[
        str | None,
        typer.Option(
            help="Event log: a directory (default <home>/log) or nats://host:4222/stream."
        ),
    ] = None,
    text_models: Annotated[
        bool, typer.Option(help="Also screen captions by MiniLM similarity (slower start).")
    ] = True,
    refresh_every: Annotated[
        float, typer.Option(min=1.0, help="Seconds between re-solves of the model.")
    ] = 30.0,
) -> None:
    """Run the HTTP API, the console and the ingest → vault → model pipeline."""
    import uvicorn

    from trustfeed.api import create_app
    from trustfeed.service import Platform, PlatformConfig
    from trustfeed.settings import load_settings

    settings = load_settings()
    logging.basicConfig(level=settings.log_level)
    overrides: dict[str, object] = {"refresh_every_s": refresh_every}
    if log_url:
        overrides["log_url"] = log_url
    config = PlatformConfig.from_settings(settings, **overrides)
    try:
        from trustfeed.moderation.text import default_classifiers

        classifiers = default_classifiers(embeddings=None if text_models else False)
        platform = Platform.open(config, text_classifiers=classifiers)
    except (TrustfeedError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    token = platform.bootstrap_token()
    if token is not None:
        typer.echo(f"bootstrap custodian token written to {config.home / 'keys' / 'admin.token'}")
    platform.start()
    typer.echo(f"trustfeed serving on http://{host}:{port} (console: /console, API docs: /docs)")
    try:
        uvicorn.run(create_app(platform), host=host, port=port, log_level="warning")
    finally:
        platform.close()
