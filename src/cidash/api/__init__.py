"""The HTTP side of cidash: ``create_app`` builds the FastAPI application (``/api/v1``, probes,
metrics, the dashboard); :mod:`cidash.metrics` holds the Prometheus metric objects."""

from cidash.api.app import create_app

__all__ = ["create_app"]
