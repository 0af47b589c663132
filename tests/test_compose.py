"""The production stack (docker-compose.yml) renders and starts its services in order (O-02).

Runs ``docker-compose config``, which needs no Docker engine; skipped when the
``docker-compose`` binary is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from relance.workflows.search_attributes import ALL as SEARCH_ATTRIBUTE_KEYS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SEARCH_ATTRIBUTES = [
    "ContactId",
    "Scenario",
    "Journey",
    "ScenarioVersion",
    "Step",
    "GiftCardId",
    "ReferralId",
]
SERVICES = {
    "postgres",
    "temporal-admin-tools",
    "temporal",
    "temporal-search-attributes",
    "temporal-ui",
    "migrate",
    "worker",
    "api",
}


def compose(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("the docker-compose binary is not installed (Debian: apt-get install docker-compose)")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    environ.update(env)
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rendered(**env: str) -> dict[str, Any]:
    result = compose("config", **env)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def conditions(service: dict[str, Any]) -> dict[str, str]:
    depends_on = service.get("depends_on") or {}
    if isinstance(depends_on, list):  # short syntax: plain start order
        return dict.fromkeys(depends_on, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends_on.items()}


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command") or []
    return command if isinstance(command, str) else " ".join(command)


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only), from the short (v1) or long (v2) syntax."""
    found: dict[str, tuple[str, bool]] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            found[target] = (source, "ro" in (mode[0].split(",") if mode else []))
        else:
            found[volume["target"]] = (volume.get("source", ""), bool(volume.get("read_only")))
    return found


@pytest.mark.feature("O-02")
def test_compose_file_is_valid() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


@pytest.mark.feature("O-02")
def test_services_start_in_order() -> None:
    services = rendered()["services"]
    assert set(services) >= SERVICES

    # relance's own services wait for their schema and for the search attributes
    for name in ("worker", "api"):
        assert conditions(services[name])["migrate"] == "service_completed_successfully", name
        assert conditions(services[name])["temporal-search-attributes"] == "service_completed_successfully"
    assert conditions(services["migrate"])["postgres"] == "service_healthy"
    assert conditions(services["temporal-admin-tools"])["postgres"] == "service_healthy"
    assert conditions(services["temporal"])["temporal-admin-tools"] == "service_completed_successfully"
    assert conditions(services["temporal-search-attributes"])["temporal"] == "service_healthy"
    assert conditions(services["temporal-ui"])["temporal"] == "service_healthy"

    assert command_text(services["migrate"]) == "relance db upgrade"
    assert command_text(services["worker"]) == "relance worker"
    assert command_text(services["api"]) == "relance api"
    assert services["api"]["environment"]["RELANCE_API_HOST"] == "0.0.0.0"
    # workers scale (`--scale worker=N`): no fixed name, no published port
    assert "container_name" not in services["worker"]
    assert not services["worker"].get("ports")


@pytest.mark.feature("O-02")
def test_search_attributes_are_registered() -> None:
    services = rendered()["services"]
    registering = [
        name for name, service in services.items() if "search-attribute create" in command_text(service)
    ]
    assert registering == ["temporal-search-attributes"]
    pairs = re.findall(
        r"--name\s+(\S+)\s+--type\s+(\S+)", command_text(services["temporal-search-attributes"])
    )
    names = [name for name, _ in pairs]
    assert sorted(names) == sorted(SEARCH_ATTRIBUTES)
    assert len(names) == len(set(names))
    assert {kind for _, kind in pairs} == {"Keyword"}
    # the workflows upsert exactly these
    assert sorted(key.name for key in SEARCH_ATTRIBUTE_KEYS) == sorted(SEARCH_ATTRIBUTES)


@pytest.mark.feature("O-02")
def test_scenarios_and_templates_come_from_a_folder(tmp_path: Path) -> None:
    default = rendered()["services"]
    for name in ("worker", "api"):
        env = default[name]["environment"]
        volumes = mounts(default[name])
        assert volumes[env["RELANCE_SCENARIOS_DIR"]] == (str(ROOT / "examples" / "scenarios"), True)
        assert volumes[env["RELANCE_TEMPLATES_DIR"]] == (str(ROOT / "examples" / "templates"), True)

    company = rendered(
        SCENARIOS_PATH=str(tmp_path / "scenarios"), TEMPLATES_PATH=str(tmp_path / "templates")
    )["services"]
    volumes = mounts(company["worker"])
    assert volumes["/etc/relance/scenarios"] == (str(tmp_path / "scenarios"), True)
    assert volumes["/etc/relance/templates"] == (str(tmp_path / "templates"), True)
