"""The engine: settings, store, releases, plans, assembly, signing, Celery app and tasks."""
