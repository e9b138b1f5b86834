"""Schematics: the model, the strict parser, the go-yaml-compatible canonical form and the ID.

Pure code: no I/O, no Flask, no Celery, nothing else of ours.
"""
