"""`image-factory build SCHEMATIC.yaml [--version V] ASSET_PATH... -o DIR`: build locally.

No server: the data directory is prepared like the embedded default does it (the reference
release is built when the store has none), the schematic is stored, and every asset goes
through `ensure_built`, the same code the web service and the workers run, so a later
request for the same asset is served from the store.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

from schematics import SchematicError, parse_schematic
from workers.backends import Backend, choose_backend
from workers.bootstrap import prepare_embedded_default
from workers.engine import Engine
from workers.errors import FactoryError
from workers.outputs.schematics_store import save_schematic
from workers.pipeline.build_once import ensure_built
from workers.pipeline.workdirs import work_root
from workers.planning.profiles import parse_profile
from workers.settings import Settings
from workers.store import Store, make_store


class _StageLines:
    """One console line per stage as it reaches a new tenth, e.g. `  extensions  50%`."""

    def __init__(self) -> None:
        self._last: tuple[str, int] | None = None

    def __call__(self, stage: str, percent: int) -> None:
        shown = (stage, percent // 10)
        if shown != self._last:
            self._last = shown
            bar = "#" * (percent // 5)
            click.echo(f"  {stage:<11} [{bar:<20}] {percent:3d}%", err=True)


def _note(message: str) -> None:
    click.echo(f"build: {message}", err=True)


def _prepare(settings: Settings, backend: Backend) -> tuple[Store, str]:
    store = make_store(backend)
    release = prepare_embedded_default(settings, store, _note)
    return store, release.version


@click.command()
@click.argument("schematic_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("asset_paths", nargs=-1, required=True)
@click.option(
    "--version", "version", default=None, help="Release version (default: the reference)."
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the assets into.",
)
def build(
    schematic_file: Path, asset_paths: tuple[str, ...], version: str | None, output: Path
) -> None:
    """Build assets (e.g. metal-amd64.iso, metal-amd64.raw.zst) for a schematic, no server."""
    settings = Settings.from_env()
    try:
        schematic = parse_schematic(schematic_file.read_bytes())
        profiles = [parse_profile(path) for path in asset_paths]
        backend = choose_backend(settings)
        store, default_version = _prepare(settings, backend)
        schematic_id = save_schematic(store, schematic)
        _note(f"schematic {schematic_id}")
        output.mkdir(parents=True, exist_ok=True)
        eng = Engine(settings, backend, store)
        for profile in profiles:
            started = time.monotonic()
            plan = eng.plan(schematic_id, version or default_version, profile)
            _note(f"{profile.path} (plan {plan.key[:16]})")
            built = ensure_built(
                store,
                plan,
                work_root(settings),
                _StageLines(),
                plan.signer(settings),
                timeout=settings.tool_timeout,
            )
            with store.open(built.blob) as reader, (output / profile.path).open("wb") as out:
                shutil.copyfileobj(reader, out, 1 << 20)
            elapsed = time.monotonic() - started
            click.echo(f"{profile.path}  {built.size} bytes  sha256:{built.sha256}  {elapsed:.1f}s")
    except SchematicError as error:
        raise click.ClickException(f"{schematic_file}: {error}") from None
    except FactoryError as error:
        raise click.ClickException(str(error)) from None
