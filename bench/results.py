"""bench/RESULTS.md holds one section per benchmark script, between its start and end marks;
each script rewrites only its own."""

from __future__ import annotations

from pathlib import Path


def write_section(out: Path, section: str, start: str, end: str, *, first: bool) -> None:
    """Replace the section between `start` and `end` in `out` by `section` (which carries the
    marks); a section not there yet goes first or last, as `first` says."""
    text = out.read_text() if out.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    elif first:
        text = section + ("\n" + text if text else "")
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    out.write_text(text)
