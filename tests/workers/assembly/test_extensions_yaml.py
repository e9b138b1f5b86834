"""`/extensions.yaml`: YAML that reads back exactly, and that the reference OS's parser reads."""

from __future__ import annotations

from importlib.resources import files

import pytest
import yaml

from extensions.manifest import Manifest
from workers.assembly.extensions_yaml import LayerEntry, render_extensions_yaml
from workers.assembly.run import run_tool

SCHEMATIC_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
LAYERS = [
    LayerEntry("0.sqsh", Manifest("hello", "1.0.0", "Tests", "[reference] a: b", ">= v1.0.0")),
    LayerEntry(
        "1.sqsh",
        Manifest(
            "schematic",
            SCHEMATIC_ID,
            "Image Factory (http://127.0.0.1:8080)",
            "",
            ">= 1.0.0",
            "customization:\n    extraKernelArgs:\n        - a=$b\n\n    meta: []\n",
        ),
    ),
    LayerEntry("modules.dep.sqsh", Manifest("modules.dep", "6.1.0-56-amd64", "Image Factory")),
    LayerEntry("2.sqsh", Manifest("odd", "1.0", "it's", "yes", "", "one line")),
]


def test_reads_back_as_the_same_data() -> None:
    doc = yaml.safe_load(render_extensions_yaml(LAYERS))
    assert [layer["image"] for layer in doc["layers"]] == [e.image for e in LAYERS]
    for entry, layer in zip(LAYERS, doc["layers"], strict=True):
        meta = layer["metadata"]
        assert meta["name"] == entry.metadata.name
        assert meta["version"] == entry.metadata.version
        assert meta["author"] == entry.metadata.author
        assert meta["description"] == entry.metadata.description
        assert meta["compatibility"] == {"talos": {"version": entry.metadata.compatibility}}
        assert meta.get("extraInfo", "") == entry.metadata.extra_info


def test_go_yaml_block_style() -> None:
    text = render_extensions_yaml(LAYERS[:2]).decode()
    assert text.startswith("layers:\n    - image: 0.sqsh\n      metadata:\n        name: hello\n")
    assert "        description: '[reference] a: b'\n" in text
    assert "                version: '>= v1.0.0'\n" in text
    assert "        extraInfo: |\n            customization:\n" in text


@pytest.mark.integration
def test_the_reference_os_parser_reads_it(tmp_path: pytest.TempPathFactory) -> None:
    awk = files("workers.releases").joinpath("reference", "layers.awk")
    listing = run_tool(["awk", "-f", str(awk)], stdin=render_extensions_yaml(LAYERS)).decode()
    assert listing.splitlines() == [
        "0.sqsh\thello\t1.0.0",
        f"1.sqsh\tschematic\t{SCHEMATIC_ID}",
        "modules.dep.sqsh\tmodules.dep\t6.1.0-56-amd64",
        "2.sqsh\todd\t1.0",
    ]
