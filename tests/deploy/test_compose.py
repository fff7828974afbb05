"""compose.yaml: valid against the Compose Specification's JSON schema (vendored in
compose_spec/, see its README), and wired as intended: MongoDB and Redis healthy before the
API starts, Redis a cache with nothing on disk, the API's settings naming those services."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator

from tests.deploy.files import ROOT, compose, final_stage, health_command, service, service_env

SCHEMA = Path(__file__).with_name("compose_spec") / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

DATABASE, CACHE, API = "mongo", "redis", "api"


def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator().iter_errors(document)
    ]


def test_the_vendored_schema_is_the_one_recorded() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_yaml_follows_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.parametrize(
    "broken",
    [
        {"services": {"x": {"image": "a", "helthcheck": {"test": ["CMD", "true"]}}}},
        {"services": {"x": {"image": "a", "depends_on": {"y": {"condition": "healthy"}}}}},
        {"services": {"x": {"image": "a", "healthcheck": {"interval": 5}}}},
    ],
    ids=["misspelt-key", "unknown-condition", "duration-not-a-string"],
)
def test_the_schema_catches_mistakes(broken: dict[str, Any]) -> None:
    assert schema_errors(broken) != []


def test_the_three_services() -> None:
    assert set(compose()["services"]) == {DATABASE, CACHE, API}
    assert service(DATABASE)["image"].startswith("mongo:")
    assert service(CACHE)["image"].startswith("redis:")


@pytest.mark.parametrize("name", [DATABASE, CACHE])
def test_the_database_and_the_cache_have_health_checks(name: str) -> None:
    check = service(name).get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert not check.get("disable", False)
    test = check["test"]
    assert isinstance(test, list), "use the list form: CMD or CMD-SHELL, then the command"
    assert test[0] in ("CMD", "CMD-SHELL")
    assert len(test) >= 2


def test_the_api_has_the_images_health_check() -> None:
    api = service(API)
    assert api["build"] in (".", {"context": "."}), "the API is not built from ./Dockerfile"
    assert (ROOT / "Dockerfile").is_file()
    check = api.get("healthcheck", {})
    assert not check.get("disable", False)
    assert check.get("test", ["CMD"])[0] != "NONE"
    _, command = health_command(final_stage())  # tested in test_dockerfile.py
    assert command


def test_the_api_starts_once_the_database_and_the_cache_are_healthy() -> None:
    depends_on = service(API)["depends_on"]
    assert isinstance(depends_on, dict), "the list form cannot wait for health"
    assert depends_on == {
        DATABASE: {"condition": "service_healthy"},
        CACHE: {"condition": "service_healthy"},
    }


def test_redis_is_a_cache_that_keeps_nothing_on_disk() -> None:
    redis = service(CACHE)
    command = redis["command"]
    assert isinstance(command, list), "use the list form, so that the empty --save survives"
    assert command[0] == "redis-server"
    pairs = list(zip(command[1::2], command[2::2], strict=True))
    assert ("--save", "") in pairs, "RDB snapshots are on"
    assert ("--appendonly", "no") in pairs, "the append-only file is on"
    assert "volumes" not in redis


def test_mongodb_keeps_its_data_in_a_volume() -> None:
    mounts = [str(volume).split(":") for volume in service(DATABASE).get("volumes", [])]
    named = set(compose().get("volumes") or {})
    assert any(target == "/data/db" and source in named for source, target, *_ in mounts)


def test_the_api_uses_the_services_for_its_database_and_cache() -> None:
    env = service_env(API)
    database = urlsplit(env["EVENTAPI_DATABASE_URL"])
    assert database.scheme == "mongodb"
    assert database.hostname == DATABASE
    assert database.port in (None, 27017)
    assert database.path.strip("/"), "no database name"
    cache = urlsplit(env["EVENTAPI_CACHE_URL"])
    assert cache.scheme == "redis"
    assert cache.hostname == CACHE
    assert cache.port in (None, 6379)


def test_the_api_keys_must_come_from_the_environment() -> None:
    keys = service_env(API)["EVENTAPI_API_KEYS"]
    assert re.fullmatch(r"\$\{EVENTAPI_API_KEYS:\?[^}]+\}", keys), (
        f"{keys!r}: use ${{EVENTAPI_API_KEYS:?message}} so compose refuses to start without"
    )


def test_the_api_is_published_on_port_8000() -> None:
    ports = service(API)["ports"]
    published = set()
    for port in ports:
        if isinstance(port, dict):
            published.add((str(port.get("published")), str(port["target"])))
        else:
            *_, host, container = str(port).split(":")
            published.add((host, container))
    assert ("8000", "8000") in published, ports
    # 8000 is where the image's server listens.
    assert final_stage().env()["EVENTAPI_PORT"] == "8000"
