"""`podman pull` under a `sigstoreSigned` policy, as a Kubernetes node checks an image.

containers/image (the library under podman, CRI-O and skopeo) resolves the tag to the OCI
index, picks the platform manifest for this machine and looks up the cosign signature of
*that* manifest (`sha256-<hex>.sig`, found through `use-sigstore-attachments: true` in
registries.d); the policy then requires one signed with `keyPath` whose payload names the
pulled manifest and, under `matchRepository`, the pulled repository.

Debian 12's podman (4.3.1) finds and fetches sigstore signatures but has their
verification patched out: it refuses every one with `DEBIAN_DISABLED`. On such a build a
pull shows that the signature was found, not that it verifies; `sigstore_check` redoes
containers/image's check of it (`prSigstoreSigned`: the signature over the payload with
the key, the payload naming the pulled manifest digest and, under `matchRepository`, the
pulled repository).

Everything podman reads or writes is under the work directory: the policy, registries.conf
and registries.d (`$HOME/.config/containers/registries.d`, the user's registries.d, which
containers/image prefers to the system's when it exists), and the image storage (`--root`,
vfs driver), so no global state is touched; the run root is a short-named temporary
directory (podman refuses one of more than 50 characters).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PULL_TIMEOUT = 900
DEBIAN_DISABLED = "Debian-local change: sigstore disabled"
FETCHED = "Fetching sigstore attachment 1/1"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


def policy(registry: str, key: Path) -> dict[str, object]:
    """The policy users write (README): only images of `registry` signed with `key`."""
    return {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                registry: [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": str(key),
                        "signedIdentity": {"type": "matchRepository"},
                    }
                ]
            }
        },
    }


def podman_pull(
    registry: str, reference: str, key: Path, work: Path
) -> subprocess.CompletedProcess[str]:
    """`podman pull --tls-verify=false <registry>/<reference>`, accepting only signatures
    made with `key` (PEM public key)."""
    config = work / ".config"
    registries_d = config / "containers" / "registries.d"
    registries_d.mkdir(parents=True)
    (registries_d / "factory.yaml").write_text(
        f"docker:\n  {registry}:\n    use-sigstore-attachments: true\n"
    )
    (work / "policy.json").write_text(json.dumps(policy(registry, key), indent=2))
    (work / "registries.conf").write_text("unqualified-search-registries = []\n")
    (work / "containers.conf").write_text("")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(work),
        "XDG_CONFIG_HOME": str(config),
        "CONTAINERS_REGISTRIES_CONF": str(work / "registries.conf"),
        "CONTAINERS_CONF": str(work / "containers.conf"),
    }
    with tempfile.TemporaryDirectory(prefix="podman-") as runroot:
        argv = [
            "podman",
            "--root", str(work / "root"),
            "--runroot", runroot,
            "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            "--log-level", "debug",  # says which signatures it fetched
            "pull",
            "--tls-verify=false",
            "--signature-policy", str(work / "policy.json"),
            f"{registry}/{reference}",
        ]  # fmt: skip
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=PULL_TIMEOUT, check=False
        )


def _get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": f"{INDEX}, {MANIFEST}"})
    with urllib.request.urlopen(request, timeout=PULL_TIMEOUT) as response:
        data: bytes = response.read()
    return data


def sigstore_check(registry: str, repository: str, tag: str, key: Path) -> bool:
    """containers/image's `sigstoreSigned` + `matchRepository` check of the linux/amd64
    image of `registry/repository:tag`, as a pull makes it: whether it is accepted."""
    base = f"http://{registry}/v2/{repository}"
    index = json.loads(_get(f"{base}/manifests/{tag}"))
    (digest,) = [
        entry["digest"]
        for entry in index["manifests"]
        if entry["platform"] == {"architecture": "amd64", "os": "linux"}
    ]
    signature = json.loads(_get(f"{base}/manifests/{digest.replace(':', '-')}.sig"))
    (layer,) = signature["layers"]
    payload = _get(f"{base}/blobs/{layer['digest']}")
    assert "sha256:" + hashlib.sha256(payload).hexdigest() == layer["digest"]
    public = serialization.load_pem_public_key(key.read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    try:
        public.verify(
            base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]),
            payload,
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        return False
    critical = json.loads(payload)["critical"]
    return bool(
        critical["type"] == "cosign container image signature"
        and critical["image"]["docker-manifest-digest"] == digest
        and critical["identity"]["docker-reference"] == f"{registry}/{repository}"
    )


def factory_key(url: str, dest: Path) -> Path:
    with urllib.request.urlopen(f"{url}/oci/cosign/signing-key.pub", timeout=60) as response:
        dest.write_bytes(response.read())
    return dest


def other_key(dest: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    dest.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return dest


def check_podman_policy(url: str, repository: str, tag: str, work: Path) -> None:
    """podman under the factory's key finds the platform manifest's signature and accepts
    it (or, built as Debian 12's is, gets as far as verifying it); under another key it
    refuses the image; the check containers/image makes accepts only the factory's key."""
    registry = url.removeprefix("http://")
    mine, theirs = factory_key(url, work / "factory.pub"), other_key(work / "other.pub")
    pulled = podman_pull(registry, f"{repository}:{tag}", mine, work / "mine")
    assert "no signature exists" not in pulled.stderr, pulled.stderr[-3000:]
    assert FETCHED in pulled.stderr
    assert pulled.returncode == 0 or DEBIAN_DISABLED in pulled.stderr, pulled.stderr[-3000:]
    refused = podman_pull(registry, f"{repository}:{tag}", theirs, work / "theirs")
    assert refused.returncode != 0
    assert "Source image rejected" in refused.stderr
    assert sigstore_check(registry, repository, tag, mine)
    assert not sigstore_check(registry, repository, tag, theirs)
