"""A connection id no column can hold is refused by the command line with exit status 2, before any
database is opened (it was a traceback)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import cli


@pytest.mark.parametrize(
    "args",
    [
        ["connections", "disable", "99999999999999999999"],
        ["connections", "remove", "0"],
        ["connections", "verify", "2147483648"],
        ["backfill", "--connection", "2147483648"],
        ["reconcile", "--connection", "-1"],
        ["replay", "--connection", "99999999999999999999"],
    ],
)
def test_connection_ids_out_of_range_are_refused(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "connection" in result.output.lower()
