"""The Dockerfile and docker-compose.yml describe the scaled deployment the code expects.

These read the files: the image installs the same Debian packages `scripts/serve` does
(through the same shell function), runs as an unprivileged user with both entry points, and
compose wires web, workers, Redis, S3, `prepare` and the TLS proxy with variables that
`Settings` actually reads, every secret from a file and every container hardened.
tests/test_container.py builds the image and runs the deployment from it.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from factory.cli import main
from workers.settings import FILE_SUFFIX, PREFIX, SECRET_FIELDS, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS = {PREFIX + f.name.upper() for f in dataclasses.fields(Settings) if f.name != "extra"}
SECRET_FILE_VARIABLES = {PREFIX + name.upper() + FILE_SUFFIX for name in SECRET_FIELDS}


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"^\s*#.*\n", "", DOCKERFILE, flags=re.M).replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _packages(list_file: str) -> list[str]:
    """The package names `scripts/lib.sh` reads from a list file."""
    out = subprocess.run(
        ["bash", "-c", f'source scripts/lib.sh && packages_in "{list_file}"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_the_image_is_debian_12() -> None:
    bases = [args for word, args in _instructions() if word == "FROM"]
    assert bases == ["debian:12-slim AS venv", "debian:12-slim"]


def test_the_image_installs_every_serve_package_with_the_serve_script_function() -> None:
    steps = _instructions()
    copies = [args for word, args in steps if word == "COPY"]
    assert any(
        "scripts/lib.sh" in args and "scripts/apt-packages-serve.txt" in args for args in copies
    )
    runs = [args for word, args in steps if word == "RUN"]
    installing = [args for args in runs if "ensure_apt_packages" in args]
    assert len(installing) == 1
    assert "apt-packages-serve.txt" in installing[0]
    # The list the function reads is the one scripts/serve installs, and it names the tools
    # the worker checks for at start-up.
    packages = _packages("scripts/apt-packages-serve.txt")
    assert {"squashfs-tools", "xorriso", "qemu-utils", "sbsigntool", "cpio"} <= set(packages)


def test_the_image_installs_the_project_and_runs_unprivileged() -> None:
    steps = _instructions()
    runs = " ".join(args for word, args in steps if word == "RUN")
    # With the library versions CI passed with, as scripts/serve and scripts/test install them.
    assert re.search(
        r"pip install --no-cache-dir\s+-c /opt/image-factory/src/constraints\.txt "
        r"-r /opt/image-factory/requirements\.txt",
        runs,
    )
    assert "pip install --no-cache-dir --no-deps /opt/image-factory/src" in runs
    copies = [args for word, args in steps if word == "COPY"]
    assert any("scripts/constraints.txt" in args for args in copies)
    users = [args for word, args in steps if word == "USER"]
    assert users == ["factory"]
    assert "useradd --system --uid 10001" in runs
    assert ("ENTRYPOINT", '["image-factory"]') in steps
    assert ("CMD", '["serve", "--host", "0.0.0.0", "--port", "8080"]') in steps
    env = " ".join(args for word, args in steps if word == "ENV")
    for name in re.findall(r"(IMAGE_FACTORY_\w+)=", env):
        assert name in SETTINGS


def test_both_entry_points_exist() -> None:
    runner = CliRunner()
    for command in ("serve", "worker", "prepare"):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0, result.output


def test_compose_runs_web_workers_redis_s3_prepare_and_the_proxy() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"redis", "s3", "prepare", "web", "worker", "proxy"}
    assert services["redis"]["image"].startswith("redis:")
    assert services["s3"]["image"].startswith("chrislusf/seaweedfs:")
    assert services["web"]["command"][0] == "serve"
    assert services["worker"]["command"] == ["worker"]
    assert services["prepare"]["command"] == ["prepare"]
    assert services["worker"]["deploy"]["replicas"] >= 2
    for name in ("web", "worker"):
        needs = services[name]["depends_on"]
        assert needs["prepare"]["condition"] == "service_completed_successfully"
        assert {"redis", "s3"} <= set(needs)


def test_compose_variables_are_settings_and_point_at_its_services() -> None:
    services = COMPOSE["services"]
    for name in ("prepare", "web", "worker"):
        env = services[name]["environment"]
        assert set(env) <= SETTINGS | SECRET_FILE_VARIABLES, set(env) - SETTINGS
        assert env["IMAGE_FACTORY_S3_ENDPOINT"].startswith("http://s3:")
    assert set(COMPOSE["volumes"]) >= {"redis-data", "s3-data"}


KEY_VARIABLES = ("SIGNING_KEY", "SECUREBOOT_KEY", "SECUREBOOT_CERT")


def test_compose_takes_every_credential_and_key_from_a_secret_file() -> None:
    services = COMPOSE["services"]
    declared = COMPOSE["secrets"]
    for name, secret in declared.items():
        assert secret["file"].startswith("${SECRETS"), name
        assert secret["file"].endswith(f"/{name}"), name
    # No credential in the file itself, nor a default for one.
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"(?i)(password|secret_key|access_key)\w*:[ \t]*[^/\s]", text)
    assert "${SECRETS:?" in text
    for name in ("prepare", "web", "worker"):
        env = services[name]["environment"]
        for variable in SECRET_FILE_VARIABLES:
            secret = env[variable].removeprefix("/run/secrets/")
            assert secret in services[name]["secrets"]
        assert not {f"{PREFIX}{field.upper()}" for field in SECRET_FIELDS} & set(env)
    for name in ("prepare", "worker"):
        env = services[name]["environment"]
        for key in KEY_VARIABLES:
            assert env[PREFIX + key].removeprefix("/run/secrets/") in services[name]["secrets"]
    # Signing happens where builds happen: the web service is given no key file at all (it
    # serves the public halves `prepare` records in S3).
    web = services["web"]
    assert not {PREFIX + key for key in KEY_VARIABLES} & set(web["environment"])
    assert not [secret for secret in web["secrets"] if secret.endswith(".pem")]
    # Redis takes its password from a file, not from its command line.
    assert "redis-password" in services["redis"]["secrets"]
    assert "requirepass $$(cat /run/secrets/redis-password)" in services["redis"]["command"][0]
    assert "tls-key.pem" in services["proxy"]["secrets"]
    # Secret files are declared once and used by someone.
    used = {secret for service in services.values() for secret in service.get("secrets", [])}
    assert used == set(declared)


def test_every_container_is_hardened_and_limited() -> None:
    for name, service in COMPOSE["services"].items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"][0] == "no-new-privileges:true", name
        # Only workers (the build sandbox) get /proc unmasked, and nothing else.
        extra = ["systempaths=unconfined"] if name == "worker" else []
        assert service["security_opt"][1:] == extra, name
        assert {"mem_limit", "cpus", "pids_limit"} <= set(service), name


def test_only_the_proxy_is_published_and_it_speaks_tls() -> None:
    services = COMPOSE["services"]
    published = {name for name, service in services.items() if "ports" in service}
    assert published == {"proxy"}
    conf = (ROOT / "deploy" / "proxy" / "nginx.conf").read_text()
    assert re.search(r"^\s*listen 8443 ssl\b", conf, re.M)
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert re.search(rf"^\s*{directive} \d+s;", conf, re.M), directive
    assert re.search(r"^\s*proxy_request_buffering on;", conf, re.M)
    assert "server web:8080;" in conf
