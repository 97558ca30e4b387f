"""Which Rankr custom field fits which GHL field type, and the reason when one does not."""

from __future__ import annotations

import pytest

from app.console.compat import check, kind_of


@pytest.mark.parametrize(
    ("samples", "kind"),
    [
        ([], "unknown"),
        ([True, False], "yes/no"),
        ([4, 2.5], "number"),
        (["2026-12-06", "2027-01-31T10:00:00Z"], "date"),
        (["Looms", "2026-12-06"], "text"),
        ([4, "four"], "text"),
    ],
)
def test_kind_of(samples: list[str | float | bool], kind: str) -> None:
    assert kind_of(samples) == kind


FITS = [
    (["Looms"], "TEXT", ()),
    ([4, True], "LARGE_TEXT", ()),
    ([], "TEXT", ()),
    ([4, "12.50"], "MONETORY", ()),
    (["2026-12-06"], "DATE", ()),
    (["a@example.com"], "EMAIL", ()),
    (["+1 415 555 0100"], "PHONE", ()),
    (["Pro"], "SINGLE_OPTIONS", ("Basic", "Pro")),
    ([True], "CHECKBOX", ("true",)),
]


@pytest.mark.parametrize(("samples", "data_type", "options"), FITS)
def test_values_that_fit(samples: list[str | float | bool], data_type: str, options: tuple[str, ...]) -> None:
    assert check("k", samples, "Field", data_type, options).ok


REFUSED = [
    (["Looms"], "DATE", (), "Rankr 'k' holds 'Looms', not a date (YYYY-MM-DD): GHL 'Field' is a DATE field"),
    ([4], "DATE", (), "Rankr 'k' holds 4, not a date (YYYY-MM-DD): GHL 'Field' is a DATE field"),
    (["four"], "NUMERICAL", (), "Rankr 'k' holds 'four', not a number: GHL 'Field' is a NUMERICAL field"),
    ([True], "NUMERICAL", (), "Rankr 'k' holds true, not a number: GHL 'Field' is a NUMERICAL field"),
    (["x"], "EMAIL", (), "Rankr 'k' holds 'x', not an email address: GHL 'Field' is a EMAIL field"),
    (
        ["Gold"],
        "SINGLE_OPTIONS",
        ("Basic", "Pro"),
        "Rankr 'k' holds 'Gold', not one of its options (Basic, Pro): GHL 'Field' is a SINGLE_OPTIONS field",
    ),
    (["a.pdf"], "FILE_UPLOAD", (), "GHL 'Field' is a FILE_UPLOAD field: it holds files or labelled lists"),
    ([], "DATE", (), "no Rankr contact carries a value for 'k' yet"),
]


@pytest.mark.parametrize(("samples", "data_type", "options", "reason"), REFUSED)
def test_values_that_cannot_hold_are_refused_with_the_reason(
    samples: list[str | float | bool], data_type: str, options: tuple[str, ...], reason: str
) -> None:
    verdict = check("k", samples, "Field", data_type, options)
    assert not verdict.ok
    assert verdict.reason.startswith(reason)
