"""The Kubernetes manifests (deploy/kubernetes), rendered by `kubectl kustomize` and checked offline.

Every object of the base and of the production overlay is validated strictly (an unknown field is an
error) against the API schemas kubernetes-validate ships, for the oldest Kubernetes the manifests
support and the newest the package knows. Then what the deployment relies on is asserted: pods run
unprivileged on a read-only root filesystem, each workload runs the right command with real options
and settings, the probes hit the real health routes on the container's port, the Secret holds only
placeholders, and the documented migration step selects what the Job needs.

`make test` installs kubectl (Debian's kubernetes-client, whose kustomize v2 the manifests keep to).
"""

from __future__ import annotations

import base64
import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from cryptography.fernet import Fernet
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, validate
from pydantic import SecretStr
from pydantic import ValidationError as SettingsError

from app.cli import cli
from app.config import Settings
from app.health import router as health_router
from tests.support.cli import ROOT

MANIFESTS = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests are for, and the newest whose schemas the package ships.
KUBERNETES_VERSIONS = ("1.30", "1.37")
PLACEHOLDER = "change-me"
# docs/kubernetes.md applies these objects first, waits for the Job, then applies the rest.
MIGRATION_STEP = "app.kubernetes.io/component in (settings,migrations)"
COMPONENTS = {"api", "worker", "migrations", "settings"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}

Manifest = dict[str, Any]


class RenderError(Exception):
    """`kubectl kustomize` refused a kustomization; the message is its own."""


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is not installed: `make kubectl` installs it (Debian package kubernetes-client)",
            pytrace=False,
        )
    return found


def render(directory: Path) -> list[Manifest]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def validation_problem(manifest: Manifest, version: str) -> str | None:
    """Why ``manifest`` is not a valid object of Kubernetes ``version`` (strict), or None."""
    where = f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"
    try:
        validate(manifest, version, strict=True)
    except ValidationError as exc:
        return f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}"
    except SchemaNotFoundError as exc:
        return f"{where}: {exc.message}"
    return None


# Shapes of real credentials: a Fernet key, a Standard Webhooks secret, a GHL Private Integration
# token, a UUID or long hex string, a JWT, a PEM private key, a password in a URL, and any long token
# mixing upper case, lower case and digits.
SECRET_SHAPES = (
    re.compile(r"[A-Za-z0-9_-]{43}="),
    re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"),
    re.compile(r"pit-[A-Za-z0-9-]{16,}"),
    re.compile(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32,}"
    ),
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"://[^:/@\s]+:(?!" + re.escape(PLACEHOLDER) + r"@)[^@\s]+@"),
    re.compile(
        r"(?=[A-Za-z0-9+/_-]*[A-Z])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*\d)[A-Za-z0-9+/_-]{24,}"
    ),
)


def real_looking_secrets(text: str) -> list[str]:
    return [found.group(0) for shape in SECRET_SHAPES for found in shape.finditer(text)]


def labels(manifest: Manifest) -> dict[str, str]:
    found: dict[str, str] = manifest["metadata"].get("labels", {})
    return found


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in objects if manifest["kind"] == kind]


def the(objects: list[Manifest], kind: str, component: str) -> Manifest:
    [found] = [m for m in of_kind(objects, kind) if labels(m).get("app.kubernetes.io/component") == component]
    return found


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(pod: Manifest) -> list[Manifest]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def env_sources(objects: list[Manifest], container: Manifest) -> list[Manifest]:
    """The ConfigMaps and Secrets a container's envFrom names, each of which must be rendered too."""
    sources = []
    for reference in container.get("envFrom", []):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in reference:
                name = reference[field]["name"]
                [source] = [m for m in of_kind(objects, kind) if m["metadata"]["name"] == name]
                sources.append(source)
    return sources


def decoded(secret: Manifest) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}


def settings_of(objects: list[Manifest], *, with_secret: bool) -> dict[str, str]:
    values = dict(the(objects, "ConfigMap", "settings")["data"])
    if with_secret:
        values |= decoded(the(objects, "Secret", "settings"))
    return values


def build_settings(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings from ``values`` alone, as a pod started with only them in its environment has them."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    return Settings(_env_file=None, **{name.lower(): value for name, value in values.items()})  # type: ignore[call-arg]


def port_number(port: int | str, container: Manifest) -> int:
    """A probe's or a Service's port (a number or a port name of ``container``) as a number."""
    if isinstance(port, int):
        return port
    [number] = [entry["containerPort"] for entry in container["ports"] if entry["name"] == port]
    return int(number)


def selects(selector: dict[str, str], target: dict[str, str]) -> bool:
    return bool(selector) and all(target.get(key) == value for key, value in selector.items())


def environment(container: Manifest) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in container.get("env", [])}


def secret_settings() -> set[str]:
    """Settings whose values are credentials: every SecretStr one, and the database URL (a password)."""
    secret = {
        name.upper() for name, field in Settings.model_fields.items() if SecretStr in _types(field.annotation)
    }
    return secret | {"DATABASE_URL"}


def _types(annotation: Any) -> tuple[Any, ...]:
    return (annotation, *getattr(annotation, "__args__", ()))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """The base and the production overlay, the overlay's secrets.env filled from the example."""
    tree = tmp_path_factory.mktemp("manifests") / "kubernetes"
    shutil.copytree(MANIFESTS, tree, ignore=shutil.ignore_patterns("secrets.env"))
    shutil.copy(tree / "base" / "secrets.example.env", tree / "overlays" / "production" / "secrets.env")
    return {"base": render(tree / "base"), "production": render(tree / "overlays" / "production")}


@pytest.fixture(params=["base", "production"])
def objects(request: pytest.FixtureRequest, rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    found: list[Manifest] = rendered[request.param]
    return found


# --- the objects are valid Kubernetes ---------------------------------------------------------------


def test_the_base_and_the_overlay_render_the_service_s_objects(rendered: dict[str, list[Manifest]]) -> None:
    def kinds(objects: list[Manifest]) -> list[tuple[str, str]]:
        return sorted((m["kind"], labels(m)["app.kubernetes.io/component"]) for m in objects)

    workloads = [
        ("ConfigMap", "settings"),
        ("Deployment", "api"),
        ("Deployment", "worker"),
        ("Job", "migrations"),
        ("PodDisruptionBudget", "api"),
        ("Secret", "settings"),
        ("Service", "api"),
    ]
    assert kinds(rendered["base"]) == workloads
    assert kinds(rendered["production"]) == sorted([*workloads, ("Ingress", "api")])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_kubernetes_with_no_unknown_field(
    objects: list[Manifest], version: str
) -> None:
    problems = [problem for manifest in objects if (problem := validation_problem(manifest, version))]
    assert problems == []


@pytest.mark.parametrize(
    ("mistake", "reported"),
    [
        ("a misspelled field", "runAsNonroot"),
        ("a port that is not a number", "containerPort"),
        ("a container without a name", "'name' is a required property"),
        ("a kind the API does not have", "Couldn't find schema"),
    ],
)
def test_the_validation_rejects_a_broken_manifest(
    rendered: dict[str, list[Manifest]], mistake: str, reported: str
) -> None:
    broken = copy.deepcopy(the(rendered["base"], "Deployment", "api"))
    pod = pod_spec(broken)
    if mistake == "a misspelled field":
        pod["securityContext"]["runAsNonroot"] = pod["securityContext"].pop("runAsNonRoot")
    elif mistake == "a port that is not a number":
        pod["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    elif mistake == "a container without a name":
        del pod["containers"][0]["name"]
    else:
        broken["kind"] = "Deploymnet"
    for version in KUBERNETES_VERSIONS:
        problem = validation_problem(broken, version)
        assert problem is not None
        assert reported in problem


def test_a_kustomization_that_names_a_missing_file_fails_to_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing-deployment.yaml\n")
    with pytest.raises(RenderError, match=r"missing-deployment\.yaml"):
        render(tmp_path)


def test_without_kubectl_the_tests_fail_and_say_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"`make kubectl` installs it"):
        render(MANIFESTS / "base")


# --- pods -------------------------------------------------------------------------------------------


def test_every_pod_runs_unprivileged_on_a_read_only_root_filesystem(objects: list[Manifest]) -> None:
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert user is not None
    workloads = [m for m in objects if m["kind"] in WORKLOADS]
    assert len(workloads) == 3
    for workload in workloads:
        name, pod = workload["metadata"]["name"], pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
            int(user.group(1)),
            int(user.group(2)),
        ), name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for shared in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(shared), name
        scratch = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
        for container in containers(pod):
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert not context.get("privileged"), where
            assert context.get("runAsUser", 10001) != 0, where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, where
            mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
            assert mounts.get("/tmp") in scratch, f"{where}: /tmp must be an emptyDir"  # noqa: S108


def test_each_workload_runs_a_real_command_of_the_image_with_real_options(objects: list[Manifest]) -> None:
    commands = typer.main.get_command(cli).commands  # type: ignore[attr-defined]
    expected = {"api": "serve", "worker": "worker", "migrations": "migrate"}
    for workload in (m for m in objects if m["kind"] in WORKLOADS):
        [container] = pod_spec(workload)["containers"]
        # The image's entrypoint is the CLI (python -m app): the manifests give its arguments only.
        assert "command" not in container
        command, *options = container["args"]
        assert command == expected[labels(workload)["app.kubernetes.io/component"]]
        known = {option for parameter in commands[command].params for option in parameter.opts}
        assert {option for option in options if option.startswith("-")} <= known


def test_the_api_serves_its_container_port_and_is_probed_at_healthz_and_readyz(
    objects: list[Manifest],
) -> None:
    api = the(objects, "Deployment", "api")
    [container] = pod_spec(api)["containers"]
    args = container["args"]
    assert args[:1] == ["serve"]
    assert args[args.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - the pod's own interfaces
    port = int(args[args.index("--port") + 1])
    assert [entry["containerPort"] for entry in container["ports"]] == [port]
    assert environment(container)["RUN_WORKER_IN_PROCESS"] == "false"

    routes = {route.path for route in health_router.routes}  # type: ignore[attr-defined]
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        check = container[probe]["httpGet"]
        assert (check["path"], port_number(check["port"], container)) == (path, port)
        assert path in routes

    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    worker_labels = the(objects, "Deployment", "worker")["spec"]["template"]["metadata"]["labels"]
    service = the(objects, "Service", "api")
    assert selects(service["spec"]["selector"], pod_labels)
    assert not selects(service["spec"]["selector"], worker_labels)
    [service_port] = service["spec"]["ports"]
    assert port_number(service_port["targetPort"], container) == port
    budget = the(objects, "PodDisruptionBudget", "api")
    assert selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
    assert budget["spec"]["maxUnavailable"] < api["spec"]["replicas"]

    for ingress in of_kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == service["metadata"]["name"]
                assert backend["port"]["name"] == service_port["name"]


def test_the_workers_run_worker_and_serve_their_metrics_on_a_probed_container_port(
    objects: list[Manifest],
) -> None:
    worker = the(objects, "Deployment", "worker")
    [container] = pod_spec(worker)["containers"]
    assert container["args"] == ["worker"]
    metrics_port = int(environment(container)["METRICS_PORT"])
    assert metrics_port == 9100
    assert [(entry["name"], entry["containerPort"]) for entry in container["ports"]] == [
        ("metrics", metrics_port)
    ]
    probe = container["livenessProbe"]
    check = probe.get("httpGet") or probe["tcpSocket"]
    assert port_number(check["port"], container) == metrics_port
    assert worker["spec"]["replicas"] >= 1


def test_the_migration_job_runs_migrate_once_with_the_service_s_settings(objects: list[Manifest]) -> None:
    job = the(objects, "Job", "migrations")
    pod = pod_spec(job)
    [container] = pod["containers"]
    assert container["args"] == ["migrate"]
    assert pod["restartPolicy"] == "Never"
    api_container = pod_spec(the(objects, "Deployment", "api"))["containers"][0]
    assert container["envFrom"] == api_container["envFrom"]
    assert container["image"] == api_container["image"]


def test_the_documented_migration_step_applies_exactly_what_the_job_needs(objects: list[Manifest]) -> None:
    match = re.fullmatch(r"app\.kubernetes\.io/component in \((.*)\)", MIGRATION_STEP)
    assert match is not None
    step = [m for m in objects if labels(m).get("app.kubernetes.io/component") in match.group(1).split(",")]
    assert sorted(m["kind"] for m in step) == ["ConfigMap", "Job", "Secret"]
    [container] = pod_spec(the(step, "Job", "migrations"))["containers"]
    assert len(env_sources(step, container)) == 2
    assert MIGRATION_STEP in (ROOT / "docs" / "kubernetes.md").read_text()


# --- settings and secrets ---------------------------------------------------------------------------


def test_every_environment_variable_the_manifests_set_is_a_setting(objects: list[Manifest]) -> None:
    names: set[str] = set()
    for workload in (m for m in objects if m["kind"] in WORKLOADS):
        for container in containers(pod_spec(workload)):
            names |= set(environment(container))
            for source in env_sources(objects, container):
                names |= set(source.get("data", {}))
    settings = {name.upper() for name in Settings.model_fields}
    assert names - settings == set()
    assert {"DATABASE_URL", "PUBLIC_URL", "ADMIN_TOKEN", "TOKEN_ENCRYPTION_KEY"} <= names


def test_the_configmap_holds_valid_settings_and_no_credential(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    values = settings_of(objects, with_secret=False)
    settings = build_settings(values, monkeypatch)  # a malformed value fails here, naming its setting
    assert settings.sandbox_mode is False
    assert settings.run_worker_in_process is True  # only the API's own env turns it off
    assert urlsplit(settings.public_url).scheme == "https"
    assert set(values) & secret_settings() == set()
    # The Secret holds the credentials, and the client ids that pair with them.
    in_secret = set(decoded(the(objects, "Secret", "settings")))
    assert {"DATABASE_URL", "ADMIN_TOKEN", "TOKEN_ENCRYPTION_KEY"} <= in_secret
    assert in_secret <= secret_settings() | {"GHL_CLIENT_ID", "RANKR_CLIENT_ID"}


def test_the_secret_holds_placeholders_that_the_service_refuses_to_start_with(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = decoded(the(objects, "Secret", "settings"))
    assert {name: PLACEHOLDER in value for name, value in secrets.items()} == dict.fromkeys(secrets, True)
    # Postgres: a SQLite file in one pod cannot be shared with the others.
    assert secrets["DATABASE_URL"].startswith("postgresql://")
    with pytest.raises(SettingsError) as refused:
        build_settings(settings_of(objects, with_secret=True), monkeypatch)
    assert any(name in str(refused.value) for name in secrets)


def test_no_real_looking_secret_is_in_the_manifests_or_what_they_render(objects: list[Manifest]) -> None:
    files = [path for path in MANIFESTS.rglob("*") if path.is_file() and path.name != "secrets.env"]
    found = {str(path.relative_to(ROOT)): real_looking_secrets(path.read_text()) for path in files}
    values = [*settings_of(objects, with_secret=True).values()]
    for workload in (m for m in objects if m["kind"] in WORKLOADS):
        for container in containers(pod_spec(workload)):
            values += environment(container).values()
    found["rendered values"] = real_looking_secrets("\n".join(values))
    assert {where: shapes for where, shapes in found.items() if shapes} == {}


@pytest.mark.parametrize(
    "credential",
    [
        Fernet.generate_key().decode(),
        "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode(),
        "postgresql://sync:s3cr3t-pa55@db.internal:5432/sync",
        "pit-3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ],
)
def test_the_secret_check_recognises_real_credentials(credential: str) -> None:
    assert real_looking_secrets(f"ADMIN_TOKEN={credential}\n") != []


def test_the_secret_check_passes_placeholders_and_plain_settings() -> None:
    text = (MANIFESTS / "base" / "secrets.example.env").read_text()
    assert PLACEHOLDER in text
    assert real_looking_secrets(text + "PUBLIC_URL=https://sync.example.com\nGHL_DAILY_LIMIT=200000\n") == []


# --- labels and the production overlay --------------------------------------------------------------


def test_every_object_and_pod_carries_the_app_labels(objects: list[Manifest]) -> None:
    for manifest in objects:
        found = labels(manifest)
        assert found["app.kubernetes.io/name"] == "rankr-ghl-sync"
        assert found["app.kubernetes.io/part-of"] == "rankr-ghl-sync"
        assert found["app.kubernetes.io/managed-by"] == "kustomize"
        assert found["app.kubernetes.io/component"] in COMPONENTS
        if manifest["kind"] in WORKLOADS:
            template = manifest["spec"]["template"]["metadata"]["labels"]
            assert {key: template[key] for key in found} == found
            selector = manifest["spec"].get("selector", {}).get("matchLabels")
            if selector is not None:
                assert selects(selector, template)
                assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/component"}


def test_the_production_overlay_pins_its_image_scales_up_and_publishes_public_url(
    rendered: dict[str, list[Manifest]],
) -> None:
    base, production = rendered["base"], rendered["production"]

    def images(objects: list[Manifest]) -> set[str]:
        workloads = (m for m in objects if m["kind"] in WORKLOADS)
        return {container["image"] for w in workloads for container in containers(pod_spec(w))}

    assert images(base) == {"rankr-ghl-sync"}
    [image] = images(production)
    name, _, tag = image.rpartition(":")
    assert name.endswith("/rankr-ghl-sync")
    assert tag not in {"", "latest"}

    for component in ("api", "worker"):
        assert (
            the(production, "Deployment", component)["spec"]["replicas"]
            > the(base, "Deployment", component)["spec"]["replicas"]
        )
    namespaces = {m["metadata"].get("namespace") for m in production}
    assert len(namespaces) == 1
    assert None not in namespaces

    public_url = urlsplit(the(production, "ConfigMap", "settings")["data"]["PUBLIC_URL"])
    [ingress] = of_kind(production, "Ingress")
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == public_url.hostname
    assert [public_url.hostname] in [tls["hosts"] for tls in ingress["spec"]["tls"]]
    paths = {path["path"] for path in rule["http"]["paths"]}
    assert {"/webhooks", "/oauth"} <= paths
    assert not paths & {"/", "/metrics"}
