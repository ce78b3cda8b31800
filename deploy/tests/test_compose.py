"""House rules of docker-compose.yml, its laptop override and the production
override, read as `docker compose` merges them (deploy/tests/compose.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

import compose
import readme_vars

ROOT = readme_vars.ROOT
BASE = ROOT / "docker-compose.yml"
LAPTOP = ROOT / "docker-compose.override.yml"
PROD = ROOT / "deploy/compose.prod.yml"
SCHEMA = ROOT / "deploy/schemas/compose-spec.json"
RUST_SERVICES = ("auth", "tasks", "files", "router")
# What a production deployment must name; the laptop has defaults.
PROD_ENV = {"SECRETS_DIR": "/etc/taskgraph/secrets", "TLS_CERT_DIR": "/etc/taskgraph/tls"}


def laptop() -> dict:
    return compose.load_merged([BASE, LAPTOP], env={})


def production() -> dict:
    return compose.load_merged([BASE, PROD], env=PROD_ENV)


@pytest.mark.parametrize("shape", ["laptop", "production"])
def test_the_merged_result_is_valid_compose(shape):
    merged = laptop() if shape == "laptop" else production()
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(merged)


def test_production_refuses_to_start_without_its_secrets_and_certificates():
    with pytest.raises(compose.InterpolationError, match="SECRETS_DIR"):
        compose.load_merged([BASE, PROD], env={"TLS_CERT_DIR": "/tls"})
    with pytest.raises(compose.InterpolationError, match="TLS_CERT_DIR"):
        compose.load_merged([BASE, PROD], env={"SECRETS_DIR": "/s"})


def test_every_variable_set_for_a_service_is_one_it_reads():
    sections = readme_vars.sections()
    for shape, merged in (("laptop", laptop()), ("production", production())):
        for service in RUST_SERVICES:
            known = readme_vars.documented(service, sections)
            for variable in merged["services"][service].get("environment", {}):
                if variable in readme_vars.PENDING:
                    continue
                assert readme_vars.is_documented(variable, known), (
                    f"{shape}: {service} sets {variable}, which the README documents for no section "
                    f"{service} reads ({', '.join(readme_vars.SECTIONS_OF[service])})"
                )


def test_every_documented_variable_compose_sets_is_read_somewhere_in_the_code():
    sources = "\n".join(p.read_text() for p in ROOT.glob("**/src/**/*.rs") if "target" not in p.parts)
    for service, definition in laptop()["services"].items():
        for variable in definition.get("environment", {}) if service in RUST_SERVICES else ():
            if variable in readme_vars.PENDING or re.match(r"SUBGRAPH_[A-Z]+_URL$", variable):
                continue
            # `<NAME>_FILE` of a secret read with Env::secret_or (kit's generic _FILE).
            name = variable.removesuffix("_FILE") if f'"{variable}"' not in sources else variable
            assert f'"{name}"' in sources, f"{service} sets {variable}, but no source file reads {name!r}"


def test_pending_variables_are_not_documented_yet():
    """Once the README documents one, remove it from readme_vars.PENDING."""
    documented = set(readme_vars.all_names())
    assert not documented & set(readme_vars.PENDING), "documented now: drop from PENDING"


def test_only_nginx_is_published_and_the_laptop_uis_only_on_loopback():
    for service, definition in laptop()["services"].items():
        for port in definition.get("ports", []):
            if service != "nginx":
                assert str(port).startswith("127.0.0.1:"), f"{service} publishes {port} beyond this machine"
    for service, definition in production()["services"].items():
        if service != "nginx":
            assert not definition.get("ports"), f"production publishes {service}"
    assert laptop()["services"]["nginx"]["ports"] == ["80:8080", "443:8443"]


def test_rust_services_are_checked_by_their_own_binary_and_wait_for_what_they_need():
    services = laptop()["services"]
    for service in RUST_SERVICES:
        definition = services[service]
        assert definition["healthcheck"]["test"] == ["CMD", "/app/service", "healthcheck"], service
        for dependency, condition in definition["depends_on"].items():
            assert condition == {"condition": "service_healthy"}, f"{service} on {dependency}"
    assert set(services["router"]["depends_on"]) == {"auth", "tasks", "files"}
    assert services["nginx"]["depends_on"] == {"router": {"condition": "service_healthy"}}
    for infrastructure in ("postgres", "redis", "rabbitmq"):
        assert "healthcheck" in services[infrastructure], infrastructure


def test_secrets_are_files_never_values():
    credentials = re.compile(r"://[^/@\s]*:[^/@\s]*@")
    secret_names = re.compile(r"PASSWORD|SECRET|PRIVATE_KEY")
    for shape, merged in (("laptop", laptop()), ("production", production())):
        for name, secret in merged["secrets"].items():
            assert set(secret) == {"file"}, f"{shape}: secret {name} is not a file"
        for service, definition in merged["services"].items():
            mounted = {s if isinstance(s, str) else s.get("target", s["source"]) for s in definition.get("secrets", [])}
            for variable, value in definition.get("environment", {}).items():
                assert not credentials.search(str(value)), f"{shape}: {service} has credentials inline in {variable}"
                if not variable.endswith("_FILE"):
                    assert not secret_names.search(variable), f"{shape}: {service} sets {variable} inline"
                    continue
                assert str(value).startswith("/run/secrets/"), f"{shape}: {service} {variable}={value}"
                assert str(value).removeprefix("/run/secrets/") in mounted, f"{shape}: {service} lacks {value}"


def test_redis_is_a_bounded_cache_without_persistence():
    command = laptop()["services"]["redis"]["command"]
    flags = dict(zip(command[2::2], command[3::2]))
    assert flags["--maxmemory-policy"] in {"allkeys-lru", "volatile-lru", "allkeys-lfu"}
    assert flags["--maxmemory"] and flags["--save"] == "" and flags["--appendonly"] == "no"


def test_production_restarts_bounds_and_locks_down_every_service():
    for service, definition in production()["services"].items():
        assert definition["restart"] == "always", service
        assert definition["deploy"]["resources"]["limits"]["memory"], service
    for service in (*RUST_SERVICES, "nginx"):
        definition = production()["services"][service]
        assert definition["read_only"] is True and "/tmp" in definition["tmpfs"], service
    nginx = production()["services"]["nginx"]
    assert nginx["volumes"] == ["/etc/taskgraph/tls:/etc/nginx/certs:ro"], "the real certificates replace the dev ones"


def test_env_example_lists_every_documented_and_compose_variable():
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_<>*]*)=", example, flags=re.M))
    missing = [name for name in readme_vars.all_names() if name not in listed]
    assert not missing, f".env.example lacks {missing} (regenerate: python3 deploy/tests/env_example.py)"
    used = set()
    for path in (BASE, LAPTOP, PROD):
        used |= compose.variables_used(path.read_text())
    assert not used - listed, f".env.example lacks the compose variables {sorted(used - listed)}"
    assert set(readme_vars.PENDING) <= listed
