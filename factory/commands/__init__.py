"""Subcommand groups of the `image-factory` CLI, one module each."""
