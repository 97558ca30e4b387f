"""The locks match pyproject.toml: every dependency pinned, hashed, within its bounds, and nothing extra.

`make lock` writes requirements.lock (runtime, what the image installs) and requirements-dev.lock (runtime
and dev, what `make install` installs); a change to pyproject.toml without it fails here.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.cli import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
RELOCK = "pyproject.toml and the locks differ: run `make lock`"


def read_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """Package name -> (pinned version, its hashes)."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        if pin := PIN.match(line):
            current = canonicalize_name(pin[1])
            pins[current] = (pin[2], [])
        elif current is not None:
            pins[current][1].extend(HASH.findall(line))
    return pins


def declared(*, dev: bool) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] + (project["optional-dependencies"]["dev"] if dev else [])
    return [Requirement(text) for text in texts]


def needed(requirements: list[Requirement]) -> set[str]:
    """Everything ``requirements`` pull in on this Python and platform, read from the installed metadata."""
    extras: dict[str, set[str]] = {}
    todo = [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in extras and requirement.extras <= extras[name]:
            continue
        extras.setdefault(name, set()).update(requirement.extras)
        if installed_version(name) is None:
            continue  # neither installed nor locked: reported as missing
        for text in metadata.requires(name) or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *extras[name])):
                todo.append(sub)
    return set(extras)


LOCKS = [
    pytest.param("requirements.lock", False, id="runtime"),
    pytest.param("requirements-dev.lock", True, id="dev"),
]


@pytest.mark.parametrize(("lock", "dev"), LOCKS)
def test_every_direct_dependency_is_pinned_within_its_bounds_and_hashed(lock: str, dev: bool) -> None:
    pins = read_lock(ROOT / lock)
    assert pins, f"{lock} pins nothing"
    unpinned = [str(r) for r in declared(dev=dev) if canonicalize_name(r.name) not in pins]
    assert unpinned == [], f"{lock} does not pin {unpinned}: {RELOCK}"
    bounds = {canonicalize_name(r.name): r for r in declared(dev=dev)}
    outside = [
        f"{name}=={pins[name][0]} (pyproject: {requirement})"
        for name, requirement in bounds.items()
        if not requirement.specifier.contains(pins[name][0], prereleases=True)
    ]
    assert outside == [], f"{lock} pins versions outside pyproject's bounds: {outside}; {RELOCK}"
    unhashed = [name for name, (_, hashes) in pins.items() if not hashes]
    assert unhashed == [], f"{lock} has pins without hashes: {RELOCK}"


@pytest.mark.parametrize(("lock", "dev"), LOCKS)
def test_each_lock_holds_exactly_what_the_dependencies_need(lock: str, dev: bool) -> None:
    pins = read_lock(ROOT / lock)
    # The dependencies' own requirements are read from the venv, which `make install` built from the locks.
    unlike = {name: version for name, (version, _) in pins.items() if installed_version(name) != version}
    assert unlike == {}, f"the venv does not have what {lock} pins: {unlike}; run `make install`"
    needs = needed(declared(dev=dev))
    missing, extra = sorted(needs - set(pins)), sorted(set(pins) - needs)
    assert (missing, extra) == ([], []), f"{lock} lacks {missing}, has unneeded {extra}: {RELOCK}"


def test_the_image_runs_the_versions_the_tests_ran() -> None:
    runtime, dev = read_lock(ROOT / "requirements.lock"), read_lock(ROOT / "requirements-dev.lock")
    differ = sorted(name for name, pin in runtime.items() if dev.get(name) != pin)
    assert differ == [], f"requirements.lock and requirements-dev.lock pin {differ} differently: {RELOCK}"


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
