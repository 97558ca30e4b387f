"""The container image as users run it (podman, host network): lint, size, migrate, serve, a round trip.

Run by `make container-test` (which builds the image first); `make test` leaves this folder out.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from tests.support.cli import ROOT
from tests.support.databases import PostgresSchema
from tests.support.reference import find_shared
from tests.support.server import free_port
from tests.support.service import Service, wait_for

PODMAN = str(find_shared() / "tools" / "podman")
IMAGE = "rankr-ghl-sync"
BASE = "docker.io/library/python:3.11-slim-bookworm"
# What the service's own layers may add to the base image: the dependencies and the source.
MAX_ADDED_MB = 150
# The compose-spec JSON schema, as dclint (a Compose linter on npm) ships it.
COMPOSE_SCHEMA_PACKAGE = "dclint@3.1.0"


def podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)


def in_image(script: str) -> str:
    result = podman("run", "--rm", "--entrypoint", "sh", IMAGE, "-c", script)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(ROOT / ".venv" / "bin" / "hadolint")
    result = subprocess.run(
        [str(hadolint), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The interpolation forms of the Compose specification this file uses (spec 12-interpolation.md):
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, and $$ for a literal $.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class MissingVariable(Exception):
    pass


def interpolate(text: str, variables: dict[str, str]) -> str:
    """``text`` as Compose renders it with ``variables`` (the shell's and the project .env's)."""

    def value(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        found = variables.get(name)
        absent = found is None or (op.startswith(":") and found == "")
        if not absent:
            return found or ""
        if op.endswith("?"):
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        return arg if op.endswith("-") else ""

    rendered = _INTERPOLATION.sub(value, text)
    assert "${" not in rendered, f"an interpolation form this test does not know: {rendered}"
    return rendered


def render(variables: dict[str, str]) -> dict[str, Any]:
    """The compose file as Compose reads it: its YAML values (never keys) interpolated."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return interpolate(node, variables) if isinstance(node, str) else node

    rendered: dict[str, Any] = walk(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))
    return rendered


def test_the_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    packed = subprocess.run(
        ["npm", "pack", COMPOSE_SCHEMA_PACKAGE, "--pack-destination", str(tmp_path), "--silent"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    with tarfile.open(tmp_path / packed.splitlines()[-1]) as archive:
        member = archive.extractfile("package/schemas/compose.schema.json")
        assert member is not None
        schema = json.load(member)
    # draft-07, named without the trailing '#' jsonschema looks for: choose the validator explicitly.
    assert schema.pop("$schema").startswith("https://json-schema.org/draft-07/")
    validator = jsonschema.Draft7Validator(schema)

    def problems(compose: dict[str, Any]) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert problems(compose) == []
    # As Compose runs it: production with a filled-in .env, and a trial with only SANDBOX=true.
    production = render(
        {"SANDBOX": "false", "PUBLIC_URL": "https://sync.example.com", "API_PUBLISH": "0.0.0.0:8000"}
    )
    trial = render({"SANDBOX": "true"})
    for rendered in (production, trial):
        assert problems(rendered) == []
    api = {**compose["services"]["api"], "ports": 8000, "command_line": "serve"}  # two mistakes
    broken = {**compose, "services": {**compose["services"], "api": api}}
    assert len(list(validator.iter_errors(broken))) == 2


def test_compose_needs_sandbox_said_and_publishes_the_api_on_this_host_only() -> None:
    with pytest.raises(
        MissingVariable, match=re.escape("SANDBOX is missing a value: set SANDBOX=false in .env")
    ):
        render({})  # no .env, nothing in the shell: refused, rather than a sandbox on every interface
    trial = render({"SANDBOX": "true"})["services"]
    assert trial["api"]["environment"]["SANDBOX"] == "true"
    assert trial["api"]["ports"] == ["127.0.0.1:8000:8000"]
    assert trial["worker"]["environment"]["PUBLIC_URL"] == "http://api:8000"  # the sandboxes' address
    production = render({"SANDBOX": "false", "PUBLIC_URL": "https://sync.example.com"})["services"]
    for name in ("migrate", "api", "worker"):
        assert production[name]["env_file"] == [{"path": ".env", "required": False}]
        assert production[name]["environment"]["PUBLIC_URL"] == "https://sync.example.com"
    # Set but empty in .env: passed on as empty, so `serve` says that PUBLIC_URL is missing.
    assert (
        render({"SANDBOX": "false", "PUBLIC_URL": ""})["services"]["api"]["environment"]["PUBLIC_URL"] == ""
    )
    # The worker's healthcheck asks the port its metrics are served on.
    worker = production["worker"]
    port = worker["environment"]["METRICS_PORT"]
    assert f"http://127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert worker["expose"] == [port]


def _inspect(image: str) -> dict[str, Any]:
    result = podman("image", "inspect", image)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)[0]
    return found


def test_the_image_is_small_runs_as_a_user_and_keeps_no_build_tools_or_caches() -> None:
    image, base = _inspect(IMAGE), _inspect(BASE)
    added_mb = (image["Size"] - base["Size"]) / 1e6
    print(f"image {image['Size'] / 1e6:.0f} MB, base {base['Size'] / 1e6:.0f} MB, added {added_mb:.0f} MB")
    assert added_mb < MAX_ADDED_MB
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python", "-m", "app"]
    assert config["Cmd"][0] == "serve"
    assert "healthz" in " ".join(image["Healthcheck"]["Test"])  # podman keeps it beside Config
    assert in_image("id -u").strip() == "10001"
    leftovers = in_image(
        "for tool in gcc cc make g++; do command -v $tool; done; "
        "ls -d /root/.cache/pip /srv/.cache /tmp/pip-* /srv/build /srv/*.egg-info 2>/dev/null; "
        "find /usr/local/lib /usr/lib/python3* -name '*.pyc' -path '*site-packages/app/*' 2>/dev/null; true"
    )
    assert leftovers.strip() == ""
    for command in ("serve", "worker", "migrate", "status", "history"):
        result = podman("run", "--rm", IMAGE, command, "--help")
        assert result.returncode == 0, result.stderr


@pytest.fixture
def schema() -> Iterator[PostgresSchema]:
    """A schema of its own in the local Postgres: the image migrates it itself."""
    created = PostgresSchema(migrated=False)
    yield created
    created.drop()


@pytest.fixture
def volume() -> Iterator[str]:
    """A named volume of its own (volumes are shared machine-wide), removed afterwards."""
    name = f"rankr-ghl-sync-data-test-{uuid.uuid4().hex[:8]}"
    yield name
    podman("volume", "rm", "-f", name)


@pytest.mark.parametrize("database", ["volume", "postgres"])
def test_migrate_and_serve_from_the_image_keep_their_data_and_sync_a_contact(
    database: str, request: pytest.FixtureRequest
) -> None:
    """The README's recipe: `migrate` in one throwaway container, `serve` in another, both on the same
    named volume (the image's SQLite file in /srv/data) or on DATABASE_URL to Postgres."""
    if database == "volume":
        storage = ["-v", f"{request.getfixturevalue('volume')}:/srv/data"]
    else:
        storage = ["-e", f"DATABASE_URL={request.getfixturevalue('schema').url}"]
    migrated = podman("run", "--rm", *storage, IMAGE, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "newest migration" in migrated.stdout
    port = free_port()
    name = f"rankr-ghl-sync-test-{uuid.uuid4().hex[:6]}"
    started = podman(
        "run", "-d", "--name", name, *storage, "-e", "WORKER_POLL_SECONDS=0.1",
        IMAGE, "serve", "--host", "127.0.0.1", "--port", str(port),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=10) as http:

            def ready() -> bool:
                try:
                    return http.get(f"{url}/readyz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, timeout=60, what="the container to become ready")
            service = Service(url, http, database_url="")  # the database is inside the container
            email = f"container.{uuid.uuid4().hex[:8]}@example.com"
            created = service.rankr.create(email=email, firstName="Boxed")
            service.settle()
            [ghl] = service.ghl.by_email(email)
            assert ghl["firstName"] == "Boxed"
            service.ghl.update(ghl["id"], lastName="Shipped")
            service.settle()
            assert service.rankr.get(created["contactId"])["lastName"] == "Shipped"  # type: ignore[index]
            [connection] = service.status()["connections"]
            assert (connection["events"]["dead"], connection["linked"]["contacts"]) == (0, 1)
            assert http.get(f"{url}/metrics").status_code == 200
    finally:
        logs = podman("logs", name).stderr
        podman("rm", "-f", name)
    assert "Traceback" not in logs
    # The container is gone; the data is not: a third container reads the link from the same storage.
    shown = podman("run", "--rm", *storage, IMAGE, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    [kept] = json.loads(shown.stdout)["connections"]
    assert kept["linked"]["contacts"] == 1


def test_the_readme_gives_the_recipe_this_file_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    volume = "-v rankr-ghl-sync-data:/srv/data"
    assert f"docker run --rm {volume} --env-file .env rankr-ghl-sync migrate" in readme
    assert f"-p 8000:8000 {volume} --env-file .env rankr-ghl-sync\n" in readme
    assert "SANDBOX=true docker compose up" in readme
    assert "cp .env.example .env" in readme
