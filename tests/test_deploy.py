"""deploy/ against the code: no container engine runs here, so every command, path, port and
setting the Dockerfile and the Kubernetes example name is checked to exist and to be valid."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from typing import Any

import pytest
import yaml

from gateway.cli import _parser, _settings_from
from gateway.observability.version import VERSION
from gateway.server.app import create_app
from gateway.settings import ENV_VARS, Settings
from tests.support import ROOT

DEPLOY = ROOT / "deploy"
ROUTES = {getattr(route, "path", None) for route in create_app(Settings()).routes}
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
# Variables that are not settings but that the gateway or its libraries read.
OTHER_VARIABLES = {"PATH", "PYTHONUNBUFFERED", "PROMETHEUS_MULTIPROC_DIR"}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    assert arguments.startswith("["), f"use the exec form: {arguments}"
    value: list[str] = json.loads(arguments)
    return value


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in dockerfile():
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def serve_settings(command: list[str], env: dict[str, str]) -> Settings:
    """What `command` would run with: the CLI's own parser and settings (flags win)."""
    assert command[0] in SCRIPTS, f"{command[0]} is not a console script of the package"
    args = _parser().parse_args(command[1:])  # an unknown flag exits here
    assert args.command == "serve"
    unknown = {k for k in env if k.startswith("OMS_") and k not in ENV_VARS.values()}
    assert not unknown, f"variables that are not settings: {unknown}"
    return _settings_from(args, env)  # a bad value raises here


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck_on_healthz():
    instructions = dockerfile()
    stages = [rest for word, rest in instructions if word == "FROM"]
    assert len(stages) >= 2 and " AS " in stages[0].upper()
    copies = [rest for word, rest in instructions if word == "COPY"]
    assert any(c.startswith(f"--from={stages[0].split()[-1]}") for c in copies)
    for source in (c.split()[:-1] for c in copies if not c.startswith("--from")):
        for path in source:
            assert (ROOT / path).exists(), f"COPY names {path}, which is not in the repository"
    users = [rest for word, rest in instructions if word == "USER"]
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    assert users and users[-1] not in ("root", "0")
    assert [i for i, (w, _) in enumerate(instructions) if w == "USER"][-1] > last_from
    check = next(rest for word, rest in instructions if word == "HEALTHCHECK")
    paths = re.findall(r"127\.0\.0\.1:%s(/\w+)", check)
    assert paths == ["/healthz"] and "/healthz" in ROUTES


def test_dockerfile_runs_the_readme_serve_command_on_the_exposed_port():
    instructions = dockerfile()
    command = exec_form(next(rest for word, rest in reversed(instructions) if word == "CMD"))
    assert command[:2] == ["oms-gateway", "serve"]
    assert "oms-gateway serve" in (ROOT / "README.md").read_text()
    env = dockerfile_env()
    assert set(env) - set(ENV_VARS.values()) <= OTHER_VARIABLES
    settings = serve_settings(command, env)
    assert settings.production and settings.host == "0.0.0.0"
    exposed = [int(rest) for word, rest in instructions if word == "EXPOSE"]
    assert exposed == [settings.port]


def kubernetes() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if d]


def find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in kubernetes() if d["kind"] == kind and d["metadata"]["name"] == name)


def container_port(container: dict[str, Any], port: int | str) -> int:
    for entry in container["ports"]:
        if port in (entry.get("name"), entry["containerPort"]):
            return int(entry["containerPort"])
    raise AssertionError(f"{container['name']} has no port {port!r}")


def pod_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


@pytest.fixture(scope="module")
def gateway_pod() -> tuple[dict[str, Any], dict[str, Any], Settings]:
    deployment = find("Deployment", "oms-gateway")
    pod = deployment["spec"]["template"]
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "gateway")
    env = pod_env(container)
    for entry in container["env"]:
        assert entry["name"] in ENV_VARS.values() or entry["name"] in OTHER_VARIABLES
    settings = serve_settings(container["command"] + container.get("args", []), env)
    return pod, container, settings


def test_kubernetes_gateway_probes_ports_and_resources(gateway_pod):
    pod, container, settings = gateway_pod
    assert container["image"].rsplit(":", 1)[1] == VERSION  # the release the manifest is for
    port = container_port(container, "http")
    assert port == settings.port and settings.host == "0.0.0.0" and settings.production
    ready = container["readinessProbe"]["httpGet"]
    live = container["livenessProbe"]["httpGet"]
    assert (ready["path"], live["path"]) == ("/readyz", "/healthz")
    assert {ready["path"], live["path"]} <= ROUTES
    assert container_port(container, ready["port"]) == container_port(container, live["port"])
    requests = container["resources"]["requests"]
    assert requests["cpu"] and requests["memory"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_kubernetes_workers_share_metrics_through_an_empty_dir(gateway_pod):
    pod, container, settings = gateway_pod
    assert settings.workers > 1
    directory = pod_env(container)["PROMETHEUS_MULTIPROC_DIR"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == directory)
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["emptyDir"] == {}
    service = find("Service", "oms-gateway")
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in ROUTES
    assert int(annotations["prometheus.io/port"]) == settings.port
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    target = service["spec"]["ports"][0]["targetPort"]
    assert container_port(container, target) == settings.port


def test_kubernetes_redis_is_the_one_the_gateway_names(gateway_pod):
    _, _, settings = gateway_pod
    url = re.fullmatch(r"redis://([\w.-]+):(\d+)/\d+", settings.redis_url)
    assert url, settings.redis_url
    service = find("Service", url.group(1))
    port = next(p for p in service["spec"]["ports"] if p["port"] == int(url.group(2)))
    redis = find("Deployment", "oms-gateway-redis")["spec"]["template"]
    assert service["spec"]["selector"].items() <= redis["metadata"]["labels"].items()
    container = redis["spec"]["containers"][0]
    assert container_port(container, port["targetPort"]) == int(url.group(2))
    assert container["resources"]["requests"]["memory"]
