"""The web service: Flask app factory, blueprints, templates and the `image-factory` CLI."""

from factory.app import create_app

__all__ = ["create_app"]
