"""`.spdx.json` and `.intoto.jsonl` beside every asset: the stored SBOM (valid SPDX, describing
the served bytes) and the provenance, whose DSSE signature openssl verifies with the key served
at `/oci/cosign/signing-key.pub`; `image-factory verify --url` against the app over real HTTP."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from factory import create_app
from factory.cli import main
from schematics import parse_schematic
from tests.factory.served import Served, served
from tests.workers.evidence.dsse import openssl_verified_statement
from workers.evidence.sbom import asset_sha256, check_sbom
from workers.outputs.schematics_store import save_schematic
from workers.pipeline.build_once import publish_build
from workers.pipeline.progress import StageClock
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory) as found:
        yield found


@pytest.mark.parametrize("path", ["kernel-amd64", "cmdline-metal-amd64"])
def test_sbom_describes_the_served_bytes(srv: Served, path: str) -> None:
    asset = srv.client.get(srv.url(path))
    response = srv.client.get(srv.url(path) + ".spdx.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/spdx+json"
    document = check_sbom(response.data)
    assert asset_sha256(document) == hashlib.sha256(asset.data).hexdigest()


def test_provenance_verifies_with_openssl_and_the_served_key(srv: Served, tmp_path: Path) -> None:
    asset = srv.client.get(srv.url("kernel-amd64")).data
    response = srv.client.get(srv.url("kernel-amd64") + ".intoto.jsonl")
    assert response.status_code == 200
    assert response.data.count(b"\n") == 1  # one JSON line
    envelope = response.data
    statement = openssl_verified_statement(
        envelope, srv.client.get("/oci/cosign/signing-key.pub").data, tmp_path
    )
    assert statement["subject"][0]["digest"]["sha256"] == hashlib.sha256(asset).hexdigest()
    # Deterministic: asking again gives the same bytes.
    assert srv.client.get(srv.url("kernel-amd64") + ".intoto.jsonl").data == response.data


@pytest.fixture
def http_url(srv: Served) -> Iterator[str]:
    """The same store and settings served over real HTTP on 127.0.0.1."""
    server = make_server("127.0.0.1", 0, create_app(srv.settings, store=srv.store), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def test_verify_fetches_and_checks_everything(srv: Served, http_url: str, tmp_path: Path) -> None:
    asset = tmp_path / "kernel-amd64"
    asset.write_bytes(srv.client.get(srv.url("kernel-amd64")).data)
    url = http_url + srv.url("kernel-amd64")
    result = CliRunner().invoke(main, ["verify", str(asset), "--url", url])
    assert result.exit_code == 0, result.output
    assert "ok  checksum" in result.output
    assert "ok  provenance: DSSE signature verified" in result.output
    assert "kernel-amd64: verified" in result.output
    asset.write_bytes(asset.read_bytes() + b"tampered")
    result = CliRunner().invoke(main, ["verify", str(asset), "--url", url])
    assert result.exit_code != 0
    assert "checksum: the file's sha256 is" in result.output


def test_a_build_stored_without_evidence_answers_404(srv: Served, tmp_path: Path) -> None:
    text = b"customization:\n  extraKernelArgs: [factory.evidence=older]\n"
    schematic = parse_schematic(text)
    sid = save_schematic(srv.store, schematic)
    profile = parse_profile("cmdline-metal-amd64")
    plan = make_plan(srv.store, schematic, sid, "v1.0.0", profile, srv.settings)
    path = tmp_path / "cmdline"
    path.write_text("talos.platform=metal factory.evidence=older")
    # As a build published before the factory made SBOMs: no evidence directory given.
    publish_build(srv.store, plan, path, time.monotonic(), StageClock(lambda s, p: None), None)
    for suffix, what in ((".spdx.json", "SBOM"), (".intoto.jsonl", "provenance")):
        response = srv.client.get(f"/image/{sid}/v1.0.0/cmdline-metal-amd64{suffix}")
        assert response.status_code == 404
        assert f"no {what} is stored for this build" in response.text


def test_verify_needs_a_key_or_a_url(tmp_path: Path) -> None:
    asset = tmp_path / "kernel-amd64"
    asset.write_bytes(b"bytes")
    result = CliRunner().invoke(main, ["verify", str(asset)])
    assert result.exit_code == 2
    assert "give --key with local documents, or --url" in result.output


def test_verify_names_a_missing_local_document(srv: Served, tmp_path: Path) -> None:
    asset = tmp_path / "kernel-amd64"
    asset.write_bytes(b"bytes")
    key = tmp_path / "key.pub"
    key.write_bytes(srv.client.get("/oci/cosign/signing-key.pub").data)
    result = CliRunner().invoke(main, ["verify", str(asset), "--key", str(key)])
    assert result.exit_code == 1
    assert "kernel-amd64.sha256" in result.output
