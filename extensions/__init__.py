"""Extensions and overlays: their formats, validation, packaging and catalog model.

Imports nothing else of ours.
"""
