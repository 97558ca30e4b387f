"""A database driver's own error lines (asyncpg's pool retrying in an outage) stay one line each."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from app.kit.logs import configure_logging


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def log_errors(level: str) -> str:
    buffer = io.StringIO()
    configure_logging(level, "console", stream=buffer)
    for name in ("asyncpg.pool", "app.worker"):
        try:
            raise ConnectionError("unexpected connection_lost() call\nsecond line")
        except ConnectionError:
            logging.getLogger(name).warning("Failed to restore; retrying %s", "soon", exc_info=True)
    return buffer.getvalue()


@pytest.mark.usefixtures("root_restored")
def test_a_driver_error_is_one_line_and_the_service_own_keep_their_traceback() -> None:
    driver, own, *traceback = log_errors("INFO").splitlines()
    assert driver.endswith(
        "WARNING Failed to restore; retrying soon (ConnectionError: unexpected connection_lost() call)"
    )
    assert own.endswith("WARNING Failed to restore; retrying soon")
    assert traceback[0] == "Traceback (most recent call last):"
    assert sum(line.startswith("Traceback") for line in traceback) == 1


@pytest.mark.usefixtures("root_restored")
def test_at_debug_the_driver_error_keeps_its_traceback() -> None:
    assert log_errors("DEBUG").count("Traceback (most recent call last):") == 2
