"""``config import`` and ``config export`` as a team keeping its configuration in git runs them: the
file is validated exactly as CONFIG_FILE is, stored as a version, and written back out equal."""

from __future__ import annotations

from pathlib import Path

from app.automation.config import load
from tests.support.cli import ROOT, cli_env, run_cli

EXAMPLE = ROOT / "examples" / "sync-config.yaml"


def test_import_then_export_gives_the_same_configuration(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/x.db")
    assert run_cli(["migrate"], env).returncode == 0
    empty = run_cli(["config", "export"], env)
    assert (empty.returncode, empty.stdout) == (0, "version: 1\n")

    imported = run_cli(["config", "import", str(EXAMPLE), "--by", "ci"], env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == f"{EXAMPLE}: saved as version 1\n"
    again = run_cli(["config", "import", str(EXAMPLE)], env)
    assert again.stdout == f"{EXAMPLE}: unchanged (the stored settings already hold it)\n"

    exported = tmp_path / "exported.yaml"
    written = run_cli(["config", "export", str(exported)], env)
    assert written.returncode == 0, written.stderr
    assert load(exported) == load(EXAMPLE)


def test_a_wrong_file_is_refused_with_its_line_and_nothing_is_stored(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/x.db")
    assert run_cli(["migrate"], env).returncode == 0
    wrong = tmp_path / "sync.yaml"
    wrong.write_text("rules:\n  - name: hot\n    when: {event: [contact.created]}\n    createTask: nope\n")
    refused = run_cli(["config", "import", str(wrong)], env)
    assert refused.returncode == 1
    assert refused.stderr == f"{wrong}:4: rules[0].createTask: no task template named 'nope'\n"
    assert run_cli(["config", "export"], env).stdout == "version: 1\n"
