"""``rankr-ghl-sync connections``: add with a Private Integration token or print the install URL, list,
disable, remove; tokens stored encrypted (a key generated beside the SQLite file in sandbox mode), rekey."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.test_cli import env, run

__all__ = ["env"]

# The command runs as a child process, as users run it: end to end (make test-e2e).
pytestmark = pytest.mark.e2e

TOKEN = "pit-0000-test-token-9f8e7d"


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(tmp_path / "cli.db")
    try:
        return list(connection.execute(sql))
    finally:
        connection.close()


def test_connections_add_list_disable_remove(env: dict[str, str], tmp_path: Path) -> None:
    assert run(["migrate"], env).returncode == 0
    added = run(
        ["connections", "add", "--ghl-location", "LocA", "--rankr-account", "acct_a", "--ghl-token", TOKEN],
        env,
    )
    assert added.returncode == 0, added.stderr
    assert "connection 1" in added.stdout
    assert TOKEN not in added.stdout
    # Sandbox mode without TOKEN_ENCRYPTION_KEY: a key was generated beside the database.
    key = (tmp_path / "rankr_ghl_sync.token-key").read_text().strip()
    [(stored, kind)] = rows(tmp_path, "SELECT access_token, kind FROM ghl_credentials")
    assert kind == "private"
    assert TOKEN not in str(stored)
    assert Fernet(key.encode()).decrypt(str(stored).encode()).decode() == TOKEN

    install = run(["connections", "add", "--ghl-location", "LocB", "--rankr-account", "acct_b"], env)
    assert install.returncode == 0
    assert "one-time link" in install.stdout
    assert "/oauth/ghl/install?link=" in install.stdout
    [(account, kind, used)] = rows(tmp_path, "SELECT rankr_account_id, kind, used_at FROM install_states")
    assert (account, kind, used) == ("acct_b", "link", None)
    linked = run(["connections", "install-link", "--rankr-account", "acct_d"], env)
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.strip().startswith("http://127.0.0.1:8000/oauth/ghl/install?link=")

    taken = run(
        ["connections", "add", "--ghl-location", "LocA", "--rankr-account", "acct_c", "--ghl-token", "x"], env
    )
    assert taken.returncode == 1
    assert "already links" in taken.stderr

    listed = run(["connections", "list"], env)
    assert "acct_a" in listed.stdout
    assert "LocA" in listed.stdout
    assert "private/ok" in listed.stdout
    assert TOKEN not in listed.stdout

    assert run(["connections", "disable", "1"], env).returncode == 0
    assert "disabled" in run(["connections", "list"], env).stdout
    assert run(["connections", "remove", "1"], env).returncode == 0
    assert run(["connections", "list"], env).stdout.strip() == "no connections"
    assert rows(tmp_path, "SELECT count(*) FROM ghl_credentials") == [(0,)]
    assert run(["connections", "remove", "1"], env).returncode == 1


def test_rekey_re_encrypts_with_the_newest_key(env: dict[str, str], tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert run(["migrate"], env).returncode == 0
    with_old = {**env, "TOKEN_ENCRYPTION_KEY": old}
    args = ["connections", "add", "--ghl-location", "LocA", "--rankr-account", "acct_a", "--ghl-token", TOKEN]
    assert run(args, with_old).returncode == 0
    rotated = run(["connections", "rekey"], {**env, "TOKEN_ENCRYPTION_KEY": f"{new},{old}"})
    assert rotated.returncode == 0
    assert "re-encrypted 1 of 1" in rotated.stdout
    [(stored,)] = rows(tmp_path, "SELECT access_token FROM ghl_credentials")
    assert Fernet(new.encode()).decrypt(str(stored).encode()).decode() == TOKEN
    again = run(["connections", "rekey"], {**env, "TOKEN_ENCRYPTION_KEY": new})
    assert "re-encrypted 0 of 1" in again.stdout
    bad = run(["connections", "list"], {**env, "TOKEN_ENCRYPTION_KEY": "not-a-key"})
    assert bad.returncode == 2
    assert "TOKEN_ENCRYPTION_KEY" in bad.stderr
