"""What can be checked of the container packaging without a Docker engine: the compose file parses,
names the services and ports the README promises, and every CIDASH_* variable it or the Dockerfile
sets is one that cidash really reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cidash.api.app import FRONTEND_ENV
from cidash.config import load_settings
from cidash.store.migrate import MIGRATIONS_ENV
from tests.support.paths import REPO

READ_BY_CODE = {"CIDASH_CONFIG", MIGRATIONS_ENV, FRONTEND_ENV}


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_services_and_ports() -> None:
    services = compose()["services"]
    assert {"mariadb", "redis", "collector", "api-1", "api-2"} <= set(services)
    assert services["collector"]["command"] == ["serve", "--role", "collector"]
    for name in ("api-1", "api-2"):
        assert services[name]["command"][:3] == ["serve", "--role", "api"]
    published = {port.split(":")[0] for name in ("api-1", "api-2") for port in services[name]["ports"]}
    assert published == {"8080", "8081"}


def test_compose_environment_is_what_the_settings_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment: dict[str, str] = compose()["services"]["collector"]["environment"]
    example = REPO / "deploy" / "cidash.toml.example"
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CIDASH_CONFIG", str(example))  # the file the compose file mounts
    settings = load_settings()
    assert settings.database_url == environment["CIDASH_DATABASE_URL"]
    assert settings.redis_url == environment["CIDASH_REDIS_URL"]
    assert settings.api.host == environment["CIDASH_API__HOST"]
    assert settings.api.port == int(environment["CIDASH_API__PORT"])
    assert [server.name for server in settings.servers] == ["opendev"]
    assert any(ci.reference for ci in settings.ci)


def test_dockerfile_sets_only_variables_cidash_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    variables = dict(re.findall(r"(CIDASH_[A-Z_]+)=(\S+)", dockerfile))
    assert variables, "the Dockerfile configures cidash through CIDASH_* variables"
    for key, value in variables.items():
        if key in READ_BY_CODE:
            continue
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.database_url == variables["CIDASH_DATABASE_URL"]
    assert settings.api.port == int(variables["CIDASH_API__PORT"])
    assert set(variables) - READ_BY_CODE <= {"CIDASH_DATABASE_URL", "CIDASH_API__HOST", "CIDASH_API__PORT"}
    assert "USER cidash" in dockerfile and "HEALTHCHECK" in dockerfile
    assert dockerfile.count("FROM ") == 3  # frontend build, python build, slim runtime
