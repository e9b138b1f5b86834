"""`GET /secureboot/signing-cert.pem`: the certificate SecureBoot assets are signed with.

The certificate users enroll (as db, or as PK/KEK/db) so firmware with Secure Boot enforced
starts this factory's systemd-boot and UKIs. Created with the key on first use unless
configured (`workers.keys.secureboot_key`).
"""

from __future__ import annotations

from flask import Blueprint, Response

from factory.services import services
from workers.keys.secureboot_key import load_or_create_secureboot_key

bp = Blueprint("secureboot", __name__)
PEM_TYPE = "application/x-pem-file"


@bp.route("/secureboot/signing-cert.pem", methods=["GET"])
def signing_cert() -> Response:
    key = load_or_create_secureboot_key(services().settings)
    return Response(key.cert_pem, status=200, mimetype=PEM_TYPE)
