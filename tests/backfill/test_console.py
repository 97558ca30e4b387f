"""The backfill command's progress bar (app/backfill/console.py) shows the tasks and notes step."""

from __future__ import annotations

import io

from rich.console import Console

from app.backfill.console import Bar


def test_the_bar_shows_contacts_whose_tasks_and_notes_were_surveyed() -> None:
    bar = Bar(Console(file=io.StringIO()))
    counts = {"rankrListed": 2, "ghlListed": 2, "decided": 4, "queued": 9, "applied": 7}
    bar("children", {**counts, "contactsToSurvey": 4, "contactsSurveyed": 3})
    shown = {task.description: (task.completed, task.total) for task in bar.progress.tasks}
    assert shown["contacts' tasks and notes"] == (3, 4)
    assert shown["writes applied"] == (7, 9)
