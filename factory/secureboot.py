"""`GET /secureboot/signing-cert.pem`: the certificate SecureBoot assets are signed with.

The certificate users enroll (as db, or as PK/KEK/db) so firmware with Secure Boot enforced
starts this factory's systemd-boot and UKIs. Only its public half is at hand here: the web
side holds no private key (`workers.keys.public_keys`).
"""

from __future__ import annotations

from flask import Blueprint, Response

from factory.engine import engine

bp = Blueprint("secureboot", __name__)
PEM_TYPE = "application/x-pem-file"


@bp.route("/secureboot/signing-cert.pem", methods=["GET"])
def signing_cert() -> Response:
    return Response(engine().public_keys.secureboot_cert_pem, status=200, mimetype=PEM_TYPE)
