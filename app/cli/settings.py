"""The settings every command reads, or one line per bad setting and exit status 2."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError

from app.automation.config import ConfigError, sync_config
from app.config import Settings


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment / .env, with the configuration file they name read and checked,
    or a readable error naming the bad setting."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            typer.echo(f"error: {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from exc
    try:
        sync_config(settings)
    except ConfigError as exc:
        typer.echo(f"error: CONFIG_FILE: {exc}", err=True)
        raise typer.Exit(2) from exc
    return settings
