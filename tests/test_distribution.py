"""`scripts/test` runs pytest in parallel on the promise that a test module runs whole, in
file order, in one process: modules share expensive fixtures (a deployment, built images)
and some tests build on an earlier one's result. pytest-xdist's grouping once broke silently
under a new pytest, so this runs pytest with the script's own flags on two sample modules
and checks where each test ran."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = """
import json, os
from pathlib import Path

def _record(name):
    with Path(os.environ["RECORD"]).open("a") as out:
        out.write(json.dumps([__name__, name, os.getpid()]) + "\\n")

{tests}
"""


def _script_flags() -> list[str]:
    """The parallelism flags `scripts/test` gives pytest (`-n N --dist MODE`)."""
    text = (ROOT / "scripts" / "test").read_text()
    found = re.search(r"python -m pytest (-n \d+ --dist \w+)", text)
    assert found, "scripts/test no longer runs pytest with -n and --dist"
    return found.group(1).split()


def test_each_module_runs_whole_and_in_order_in_one_process(tmp_path: Path) -> None:
    names = [f"test_{n:02d}" for n in range(8)]
    for module in ("test_first_module", "test_second_module"):
        tests = "\n".join(f"def {name}():\n    _record('{name}')\n" for name in names)
        (tmp_path / f"{module}.py").write_text(MODULE.replace("{tests}", tests))
    record = tmp_path / "record.jsonl"

    done = subprocess.run(
        [sys.executable, "-m", "pytest", *_script_flags(), "-p", "no:cacheprovider",
         "-p", "no:randomly", "-q", str(tmp_path)],
        cwd=tmp_path, env={"RECORD": str(record), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    for module in ("test_first_module", "test_second_module"):
        ran = [(name, pid) for mod, name, pid in rows if mod == module]
        assert [name for name, _ in ran] == names  # every test, in file order
        assert len({pid for _, pid in ran}) == 1, f"{module} was split over processes: {ran}"
