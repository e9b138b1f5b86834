"""The extension validator's messages in words, for people using the upload page.

The API keeps the validator's terse `<file>: <path>: <problem>` (clients and logs match on
it); the page says what is wrong with the person's archive and what an extension must look
like, in their language. Shapes it does not know pass through as a sentence, as the
schematic upload's explanations do (`factory.words`).
"""

from __future__ import annotations

import re

from factory.i18n import _
from factory.words import sentence

_LABEL = "upload: "
_NOT_AN_ARCHIVE = re.compile(
    r"^(not a tar archive|corrupt .* data|.*-compressed archives are not supported)"
)
_YAML_LINE = re.compile(r"^manifest\.yaml: invalid YAML: .*?line (?P<line>\d+)")
_UNKNOWN_FIELD = re.compile(
    r'^manifest\.yaml: (?P<parent>[\w.]+): unknown field "(?P<name>[^"]+)"$'
)
_MANIFEST_FIELD = re.compile(r"^manifest\.yaml: (?P<setting>[\w.]+): (?P<problem>.+)$")
_OUTSIDE = re.compile(r"^(?P<member>\S+): (?P<path>\S+) is outside the allowed paths")
_MEMBER = re.compile(r"^(?P<member>rootfs/\S*): (?P<problem>.+)$")
_NO_RELEASE = re.compile(
    r'^extension (?P<name>\S+) (?P<version>\S+) requires version "(?P<range>[^"]*)", '
    r"which no available version satisfies \(available: (?P<available>[^)]*)\)$"
)
_TAKEN = re.compile(
    r"^extension (?P<name>\S+) (?P<version>\S+) already exists with different content"
)
_SAME_CONTENT = re.compile(
    r"^identical content is already stored as (?P<name>\S+) (?P<version>\S+) "
)


def N_(text: str) -> str:
    """Marks `text` for translation (gettext's name for "translate later", which pybabel
    finds); `explain_extension_error` translates it when used."""
    return text


# Each shape of message, and its words; the words are filled from the shape's named parts.
_EXPLAINED = (
    (_YAML_LINE, N_("Line %(line)s of manifest.yaml is not valid YAML.")),
    (_UNKNOWN_FIELD, N_("manifest.yaml has no setting “%(name)s” inside “%(parent)s”.")),
    (
        _OUTSIDE,
        N_(
            "The archive installs %(path)s, outside the places an extension may add files "
            "to (such as /usr/local, /usr/lib/firmware and /usr/lib/modules)."
        ),
    ),
    (
        _NO_RELEASE,
        N_(
            "Extension %(name)s %(version)s is for releases %(range)s, and this factory has "
            "none of those (it has %(available)s)."
        ),
    ),
    (
        _TAKEN,
        N_(
            "Version %(version)s of %(name)s is already in the catalog with other content. "
            "Give yours a new version in manifest.yaml."
        ),
    ),
    (_SAME_CONTENT, N_("The same content is already in the catalog as %(name)s %(version)s.")),
    (_MANIFEST_FIELD, N_("In manifest.yaml, “%(setting)s”: %(problem)s")),
    (_MEMBER, N_("In the archive, %(member)s: %(problem)s")),
)


def _shape() -> str:
    return _("An extension is a manifest.yaml beside a rootfs/ directory.")


def explain_extension_error(message: str) -> str:
    """`message` (an InvalidRequest from storing an upload) as sentences."""
    text = message.removeprefix(_LABEL)
    if _NOT_AN_ARCHIVE.match(text):
        return _(
            "The file is not an extension archive. Upload a tar, tar.gz or tar.zst file, or "
            "an OCI image layout packed as a tar file."
        )
    if text == "missing manifest.yaml":
        return _("The archive has no manifest.yaml at its top.") + " " + _shape()
    if text == "missing rootfs/":
        return _("The archive has no rootfs/ directory.") + " " + _shape()
    for shape, words in _EXPLAINED:
        if found := shape.match(text):
            parts = found.groupdict()
            if "problem" in parts:
                parts["problem"] = sentence(parts["problem"])
            if "available" in parts:
                parts["available"] = parts["available"] or _("none")
            return _(words, **parts)
    return sentence(text)
