"""A failure repeating in a loop: one line when it starts, a count once a minute, one line when it ends."""

from __future__ import annotations

import logging

import pytest

from app.kit.streak import FailureStreak, error_text

LOGGER = "tests.streak"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def explain(error: BaseException) -> str | None:
    return "the database is away; start it" if isinstance(error, ConnectionRefusedError) else None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def streak(clock: FakeClock) -> FailureStreak:
    return FailureStreak(logging.getLogger(LOGGER), "loop.claim", explain=explain, clock=clock)


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(record.levelname, record.getMessage()) for record in caplog.records if record.name == LOGGER]


def test_a_known_failure_every_second_for_three_minutes_logs_four_lines(
    streak: FailureStreak, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(180):
            streak.failed(ConnectionRefusedError(111, "refused"))
            clock.now += 1
        streak.succeeded()
    assert lines(caplog) == [
        ("WARNING", "loop.claim_failed"),
        ("WARNING", "loop.claim_still_failing"),
        ("WARNING", "loop.claim_still_failing"),
        ("INFO", "loop.claim_restored"),
    ]
    first, *counts, restored = [r for r in caplog.records if r.name == LOGGER]
    assert first.__dict__["reason"] == "the database is away; start it"
    assert first.exc_info is None  # no traceback unless DEBUG
    assert [(r.__dict__["failures"], r.__dict__["seconds"]) for r in counts] == [(61, 60), (121, 120)]
    assert restored.__dict__["failures"] == 180
    assert restored.__dict__["seconds"] == 180.0


def test_counts_come_at_most_once_per_interval_and_carry_the_tally(
    streak: FailureStreak, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        streak.failed(ConnectionRefusedError())
        clock.now += 59.9
        streak.failed(ConnectionRefusedError())  # under a minute since the first line: quiet
        clock.now += 0.1
        streak.failed(ConnectionRefusedError())  # a minute: the count
        clock.now += 30
        streak.failed(ConnectionRefusedError())
    assert lines(caplog) == [("WARNING", "loop.claim_failed"), ("WARNING", "loop.claim_still_failing")]
    assert caplog.records[-1].__dict__["failures"] == 3
    assert caplog.records[-1].__dict__["seconds"] == 60
    assert streak.failing
    assert streak.failures == 4


def test_an_unknown_failure_gets_its_traceback_once(
    streak: FailureStreak, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(5):
            try:
                raise KeyError("surprise")
            except KeyError as exc:
                streak.failed(exc)
            clock.now += 1
    [record] = caplog.records
    assert (record.levelname, record.getMessage()) == ("ERROR", "loop.claim_failed")
    assert record.exc_info is not None
    assert record.__dict__["error"] == "KeyError: 'surprise'"


def test_a_known_failure_shows_its_traceback_at_debug(
    streak: FailureStreak, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        streak.failed(ConnectionRefusedError())
    [record] = caplog.records
    assert record.exc_info is not None


def test_success_without_a_streak_says_nothing_and_a_new_streak_starts_afresh(
    streak: FailureStreak, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        streak.succeeded()
        streak.failed(ConnectionRefusedError())
        clock.now += 5
        streak.succeeded()
        streak.succeeded()
        streak.failed(ConnectionRefusedError())
    assert lines(caplog) == [
        ("WARNING", "loop.claim_failed"),
        ("INFO", "loop.claim_restored"),
        ("WARNING", "loop.claim_failed"),
    ]
    assert caplog.records[1].__dict__["seconds"] == 5.0
    assert streak.failing
    assert streak.failures == 1


def test_a_streak_reported_elsewhere_starts_quietly_and_still_ends_with_a_line(
    streak: FailureStreak, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        streak.known("no schema; run migrate")
        streak.failed(ConnectionRefusedError())
        clock.now += 61
        streak.failed(ConnectionRefusedError())
        streak.succeeded()
    assert lines(caplog) == [("WARNING", "loop.claim_still_failing"), ("INFO", "loop.claim_restored")]
    assert caplog.records[0].__dict__["reason"] == "no schema; run migrate"


def test_known_then_success_at_once_says_nothing(
    streak: FailureStreak, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        streak.known("the schema is older; run migrate")
        streak.succeeded()
    assert lines(caplog) == []
    assert not streak.failing


def test_error_text_is_the_type_and_the_first_line_shortened() -> None:
    assert error_text(ValueError("one\ntwo")) == "ValueError: one"
    assert error_text(ValueError("x" * 500), limit=20) == "ValueError: xxxxxxxx"
    assert error_text(ValueError()) == "ValueError: "
