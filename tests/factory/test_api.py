"""The schematics API over HTTP: upstream's responses, and nothing stored from bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from factory import create_app
from factory.api import go_json_string
from schematics import canonical_bytes, parse_schematic, schematic_id
from tests.schematics import bad_inputs
from workers.settings import Settings
from workers.store import LocalStore
from workers.tenancy.tokens import ROLE_ADMIN, ROLE_UPLOAD, create_token

NOAPIC = b"customization:\n  extraKernelArgs: [noapic, nolapic]\n"
NOAPIC_ID = "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"
NOAPIC_CANONICAL = "customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n"


def stored_schematics(store: LocalStore) -> list[str]:
    return list(store.list("schematics/"))


def test_create_answers_like_upstream(client: FlaskClient, store: LocalStore) -> None:
    response = client.post("/schematics", data=NOAPIC)
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    assert response.data == (
        b'{"id":"' + NOAPIC_ID.encode() + b'","schematic":"customization:\\n    extraKernelArgs:'
        b'\\n        - noapic\\n        - nolapic\\n"}\n'
    )
    assert json.loads(response.data) == {"id": NOAPIC_ID, "schematic": NOAPIC_CANONICAL}
    assert stored_schematics(store) == [f"schematics/{NOAPIC_ID}"]


def test_round_trip(client: FlaskClient) -> None:
    created = client.post("/schematics", data=NOAPIC).get_json()
    response = client.get(f"/schematics/{created['id']}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/yaml"
    assert response.data.decode() == created["schematic"] == NOAPIC_CANONICAL
    assert parse_schematic(response.data) == parse_schematic(NOAPIC)


def test_creating_again_is_idempotent(client: FlaskClient, store: LocalStore) -> None:
    first = client.post("/schematics", data=NOAPIC)
    second = client.post("/schematics", data=NOAPIC)
    assert first.status_code == second.status_code == 201
    assert first.data == second.data
    assert stored_schematics(store) == [f"schematics/{NOAPIC_ID}"]


@pytest.mark.parametrize(
    "content_type",
    ["application/yaml", "application/json", "text/plain", "application/x-www-form-urlencoded"],
)
def test_content_type_is_ignored_and_json_is_yaml(client: FlaskClient, content_type: str) -> None:
    body = b'{"customization": {"extraKernelArgs": ["noapic", "nolapic"]}}'
    response = client.post("/schematics", data=body, content_type=content_type)
    assert response.status_code == 201
    assert response.get_json()["id"] == NOAPIC_ID


def test_upstream_vector_unknown_field(client: FlaskClient, store: LocalStore) -> None:
    response = client.post("/schematics", data=b"something:")
    assert response.status_code == 400
    assert response.data == (
        b"yaml: construct errors: line 1: field something not found in type schematic.Schematic\n"
    )
    assert response.mimetype == "text/plain"
    assert stored_schematics(store) == []


@pytest.mark.parametrize("schematic_id", ["a" * 64, "aaaaaaaaaaaa", "A" * 64, "not-an-id"])
def test_unknown_and_malformed_ids_are_404(client: FlaskClient, schematic_id: str) -> None:
    response = client.get(f"/schematics/{schematic_id}")
    assert response.status_code == 404
    assert response.data == b"schematic not found\n"


def test_wrong_method_is_405(client: FlaskClient) -> None:
    response = client.put("/schematics", data=NOAPIC)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


# `owner` is no parse error over HTTP: it asks for the owner's token (see the owner tests).
HTTP_BAD_INPUTS = [case for case in bad_inputs.ALL if not case.data.startswith(b"owner:")]


@pytest.mark.parametrize("case", HTTP_BAD_INPUTS, ids=lambda case: case.name)
def test_bad_input_is_4xx_naming_the_problem_and_stores_nothing(
    client: FlaskClient, store: LocalStore, case: bad_inputs.BadInput
) -> None:
    response = client.post("/schematics", data=case.data)
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    body = response.data.decode()
    assert body.endswith("\n")
    for fragment in case.fragments:
        assert fragment in body
    assert "Traceback" not in body
    assert stored_schematics(store) == []


def test_ten_megabytes_are_413_naming_the_limit(client: FlaskClient, store: LocalStore) -> None:
    response = client.post("/schematics", data=b"customization: {}\n" + b"#" * 10_000_000)
    assert response.status_code == 413
    assert response.data == b"schematic body is larger than the limit of 65536 bytes\n"
    assert stored_schematics(store) == []


def small_limit_client(tmp_path: Path, limit: int) -> tuple[FlaskClient, LocalStore]:
    settings = Settings(data_dir=tmp_path / "small", max_schematic_bytes=limit)
    store = LocalStore(settings.data_dir / "store")
    return create_app(settings, store=store).test_client(), store


def test_the_limit_is_exact(tmp_path: Path) -> None:
    body = NOAPIC.ljust(200, b"#")
    client, _ = small_limit_client(tmp_path, limit=200)
    assert client.post("/schematics", data=body).status_code == 201
    too_big = client.post("/schematics", data=body + b"#")
    assert too_big.status_code == 413
    assert b"limit of 200 bytes" in too_big.data


def test_a_chunked_body_without_length_is_bounded_too(tmp_path: Path) -> None:
    client, store = small_limit_client(tmp_path, limit=200)
    environ = {"wsgi.input_terminated": True}  # what gunicorn sets for chunked requests
    oversized = io.BytesIO(b"customization: {}\n" + b"#" * 100_000)
    response = client.post(
        "/schematics",
        input_stream=oversized,
        headers={"Transfer-Encoding": "chunked"},
        environ_base=environ,
    )
    assert response.status_code == 413
    assert oversized.tell() <= 201  # read no more than limit + 1 bytes
    assert stored_schematics(store) == []
    fitting = client.post(
        "/schematics",
        input_stream=io.BytesIO(NOAPIC),
        headers={"Transfer-Encoding": "chunked"},
        environ_base=environ,
    )
    assert fitting.status_code == 201
    assert fitting.get_json()["id"] == NOAPIC_ID


def test_deep_nesting_under_a_raised_limit_is_a_400(tmp_path: Path) -> None:
    client, store = small_limit_client(tmp_path, limit=1_000_000)
    response = client.post("/schematics", data=b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert b"nesting is deeper than the limit" in response.data
    assert stored_schematics(store) == []


def test_go_json_escapes_html_characters(client: FlaskClient) -> None:
    body = (
        b"customization:\n  extraKernelArgs: ['<a&b>', \"\\u2028\"]\n"
        b'  embeddedMachineConfiguration: "\\t"\n'
    )
    response = client.post("/schematics", data=body)
    assert response.status_code == 201
    assert b"\\u003ca\\u0026b\\u003e" in response.data
    assert b"<" not in response.data
    created = response.get_json()
    assert created["schematic"] == canonical_bytes(parse_schematic(body)).decode()
    assert created["id"] == schematic_id(parse_schematic(body))


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("plain", '"plain"'),
        ('q"b\\', '"q\\"b\\\\"'),
        ("\n\r\t\b\f\x01\x1f", '"\\n\\r\\t\\b\\f\\u0001\\u001f"'),
        ("<>&", '"\\u003c\\u003e\\u0026"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("été😀\x7f", '"été😀\x7f"'),
    ],
)
def test_go_json_string(text: str, encoded: str) -> None:
    assert go_json_string(text) == encoded
    assert json.loads(encoded) == text


OWNED = b"owner: alice\ncustomization:\n  extraKernelArgs: [quiet]\n"


def test_owner_schematic_needs_that_owners_token(client: FlaskClient, store: LocalStore) -> None:
    _, alice = create_token(store, "alice", ROLE_UPLOAD)
    _, bob = create_token(store, "bob", ROLE_UPLOAD)
    _, admin = create_token(store, "root", ROLE_ADMIN)
    expected = schematic_id(parse_schematic(OWNED, allow_owner=True))

    anonymous = client.post("/schematics", data=OWNED)
    assert anonymous.status_code == 401
    assert 'owner "alice" needs the token of that owner' in anonymous.text
    assert anonymous.headers["WWW-Authenticate"].startswith('Bearer realm="image-factory"')
    wrong = client.post("/schematics", data=OWNED, headers={"Authorization": f"Bearer {bob}"})
    assert wrong.status_code == 403
    assert 'token "bob" is neither' in wrong.text
    assert stored_schematics(store) == []

    for token in (alice, admin):
        ok = client.post("/schematics", data=OWNED, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 201
        assert ok.get_json()["id"] == expected
    # Once stored, it is read by ID like any other schematic.
    assert b"owner: alice\n" in client.get(f"/schematics/{expected}").data
