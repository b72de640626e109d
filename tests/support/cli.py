"""The `cidash` client commands run in process (typer's CliRunner), without the caller's CIDASH_* settings."""

from __future__ import annotations

import typer
from typer.testing import CliRunner, Result

from cidash.client.commands import register


def cli() -> typer.Typer:
    app = typer.Typer(name="cidash", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    register(app)
    return app


def invoke(*args: str, **env: str | None) -> Result:
    environment: dict[str, str | None] = {"CIDASH_URL": None, "CIDASH_TOKEN": None, "COLUMNS": None}
    environment.update(env)
    return CliRunner().invoke(cli(), list(args), env=environment)
