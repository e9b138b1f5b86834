"""Image assembly: one module per tool family, every tool run through `run.run_tool` (in a
build, inside the build's sandbox: `run.sandboxed`, `sandbox`)."""
