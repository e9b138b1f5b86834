"""`GET /pxe/<schematic>/<version>/<platform>-<arch>[-secureboot]`: an iPXE boot script.

Byte for byte as upstream (`standard.ipxe`, `secureboot.ipxe`): the path is read as the asset
path `cmdline-<path>`, so the platform/arch grammar, the `${buildarch}` aliases (`x86_64`,
`i386` → amd64, `aarch64` → arm64) and the error messages are those of `/image`. The script
fetches the kernel and initramfs (or, for SecureBoot, the UKI) from `/image/...` under the PXE
base URL (`factory.urls.pxe_url`: `IMAGE_FACTORY_PXE_URL`, else the external URL) with the command
line of the cmdline asset of the same schematic, version, platform and arch.
"""

from __future__ import annotations

from flask import Blueprint, Response

from factory.engine import engine
from factory.urls import pxe_url
from workers.planning.cmdline import asset_cmdline
from workers.planning.profiles import Profile, parse_profile
from workers.releases.stored import load_release
from workers.releases.versions import normalize_version

bp = Blueprint("pxe", __name__)

# Anonymous scripts are the same for everyone for a while (upstream PR #578).
CACHE_CONTROL = "public, max-age=3600"


@bp.get("/pxe/<schematic_id>/<version>/<path>")
def script(schematic_id: str, version: str, path: str) -> Response:
    eng = engine()
    eng.schematic(schematic_id)  # an unknown schematic is a 404 before a bad version or path
    version = normalize_version(version)
    profile = parse_profile(f"cmdline-{path}")
    plan = eng.plan(schematic_id, version, profile)
    cmdline = asset_cmdline(plan, load_release(eng.store, plan.version, plan.arch))
    base = f"{pxe_url()}/image/{schematic_id}/{plan.version}"
    body = render_script(base, profile, cmdline)
    response = Response(body, status=200, mimetype="text/plain")
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def render_script(image_base: str, profile: Profile, cmdline: str) -> str:
    """The iPXE script; `image_base` is `<PXE URL>/image/<id>/<vtag>`."""
    if profile.secureboot:
        uki = f"{profile.platform}-{profile.arch}-secureboot-uki.efi"
        return f"#!ipxe\n\nimgfree\nkernel {image_base}/{uki} {cmdline}\nboot\n"
    return (
        "#!ipxe\n\nimgfree\n"
        f"kernel {image_base}/kernel-{profile.arch} {cmdline}\n"
        f"initrd {image_base}/initramfs-{profile.arch}.xz\n"
        "boot\n"
    )
