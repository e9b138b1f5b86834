"""`GET /secureboot/signing-cert.pem` serves the certificate the SecureBoot key signs with."""

from __future__ import annotations

from cryptography import x509
from flask.testing import FlaskClient

from workers.keys.secureboot_key import load_or_create_secureboot_key
from workers.settings import Settings


def test_serves_the_signing_certificate(client: FlaskClient, settings: Settings) -> None:
    response = client.get("/secureboot/signing-cert.pem")
    assert response.status_code == 200
    assert response.mimetype == "application/x-pem-file"
    cert = x509.load_pem_x509_certificate(response.data)
    key = load_or_create_secureboot_key(settings)
    assert cert == key.cert
    assert client.get("/secureboot/signing-cert.pem").data == response.data
