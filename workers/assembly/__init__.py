"""Image assembly: one module per tool family, every tool run through `run.run_tool`."""
