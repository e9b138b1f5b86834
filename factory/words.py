"""The schematic parser's messages in words for people using the web form.

The API keeps upstream's go-yaml wording (clients match on it); the upload page says the same
thing as a sentence about the user's file: which line, which setting, what was expected.
"""

from __future__ import annotations

import re

from factory.i18n import _

_PROBLEM = re.compile(r"^line (?P<line>\d+): (?P<message>.*?)(?: \(at (?P<path>[^)]*)\))?$")
_CONSTRUCT = re.compile(r"^cannot construct (?P<what>!!\w+ `.*`|!!seq|!!map) into (?P<type>.+)$")
_UNKNOWN_FIELD = re.compile(r"^field (?P<name>\S+) not found in type (?P<type>\S+)$")
_GO_TYPES = {
    "string": "text",
    "[]string": "a list of texts",
    "bool": "true or false",
    "uint8": "a number from 0 to 255",
    "int": "a whole number",
}
_A_MAPPING = "a mapping of settings"
_FOUND = {"!!seq": "a list", "!!map": "a mapping (key: value lines)"}


def explain_schematic_error(message: str) -> str:
    """`message` (from `parse_schematic`) as sentences; unknown shapes pass through."""
    if message.startswith("EOF"):
        return _("The file is empty.")
    text = message.removeprefix("yaml: ")
    if text.startswith("construct errors: "):
        problems = text.removeprefix("construct errors: ").split("; ")
        return " ".join(_explain_problem(p) for p in problems)
    return sentence(text)


def _explain_problem(problem: str) -> str:
    found = _PROBLEM.match(problem)
    if found is None:
        return sentence(problem)
    line, message, path = found["line"], found["message"], found["path"] or ""
    construct = _CONSTRUCT.match(message)
    if construct:
        what = construct["what"]
        if what in _FOUND:
            shown = _(_FOUND[what])
        else:
            shown = _("the value “%(value)s”", value=what.split(" ", 1)[1].strip("`"))
        wanted = _(_GO_TYPES.get(construct["type"], _A_MAPPING))
        if not path:
            return _(
                "Line %(line)s: the value must be %(wanted)s, not %(shown)s.",
                line=line,
                wanted=wanted,
                shown=shown,
            )
        return _(
            "Line %(line)s: “%(setting)s” must be %(wanted)s, not %(shown)s.",
            line=line,
            setting=path,
            wanted=wanted,
            shown=shown,
        )
    unknown = _UNKNOWN_FIELD.match(message)
    if unknown and "." in path:
        return _(
            "Line %(line)s: a schematic has no setting “%(name)s” inside “%(parent)s”.",
            line=line,
            name=unknown["name"],
            parent=path.rsplit(".", 1)[0],
        )
    if unknown:
        return _(
            "Line %(line)s: a schematic has no setting “%(name)s”.", line=line, name=unknown["name"]
        )
    return _("Line %(line)s: %(problem)s", line=line, problem=sentence(message))


def sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
