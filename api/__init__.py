"""The dothi REST API (FastAPI): ``create_app(settings)``; ``dothi api`` serves it."""
