"""``rankr-ghl-sync connections``: add with a Private Integration token or print the install URL, list,
disable, remove; tokens stored encrypted (a key generated beside the SQLite file in sandbox mode), rekey."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.sandbox import SandboxConfig, create_standalone_app
from tests.support.server import serve
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


def test_connections_are_verified_when_added_and_on_demand(env: dict[str, str]) -> None:
    config = SandboxConfig(webhook_target=None)
    with serve(create_standalone_app(config)) as url:
        sandboxed = {**env, "PUBLIC_URL": url}
        assert run(["migrate"], sandboxed).returncode == 0
        location, account = config.ghl_location_id, config.rankr_account_id
        good = ["--ghl-location", location, "--rankr-account", account, "--ghl-token", config.ghl_token]
        added = run(["connections", "add", *good], sandboxed)
        assert added.returncode == 0, added.stderr
        assert "verified (GHL location 'Sandbox sub-account')" in added.stdout

        elsewhere = [
            "--ghl-location",
            "LocElsewhere",
            "--rankr-account",
            "acct_b",
            "--ghl-token",
            config.ghl_token,
        ]
        added = run(["connections", "add", *elsewhere], sandboxed)
        assert added.returncode == 0, added.stderr  # the connection exists; its problem is named
        assert "failed [ghl_location_unknown]" in added.stdout
        assert "Fix: check the connection's --ghl-location" in added.stdout

        one = run(["connections", "verify", "1"], sandboxed)
        assert one.returncode == 0, one.stderr
        assert one.stdout.startswith("connection 1: verified")
        every = run(["connections", "verify"], sandboxed)
        assert every.returncode == 1
        assert [line.split(":")[0] for line in every.stdout.splitlines()] == ["connection 1", "connection 2"]
        assert "connection 2: failed [ghl_location_unknown]" in every.stdout
        assert config.ghl_token not in every.stdout
        unknown = run(["connections", "verify", "9"], sandboxed)
        assert unknown.returncode == 1
        assert "no connection 9" in unknown.stderr

        status = run(["status"], sandboxed)
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("overall: degraded")
        assert (
            "! connection 2 (acct_b <-> LocElsewhere): not verified: GHL location LocElsewhere"
            in status.stdout
        )
        assert "  verification    verified (GHL location 'Sandbox sub-account')  (checked " in status.stdout
        assert "  verification    failed [ghl_location_unknown]" in status.stdout

        assert run(["connections", "remove", "2"], sandboxed).returncode == 0
        status = run(["status"], sandboxed)
        assert status.stdout.startswith("overall: ok"), status.stdout


def test_verify_without_any_connection_says_how_to_add_one(env: dict[str, str]) -> None:
    assert run(["migrate"], env).returncode == 0
    result = run(["connections", "verify"], env)
    assert result.returncode == 1
    assert "no connection yet" in result.stderr
