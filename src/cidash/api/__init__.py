"""The HTTP side of cidash, the step after the live feed: ``create_app`` builds the FastAPI
application (``/api/v1`` in ``routes/``, the live feed's websocket ``ws.py`` and server-sent
events ``sse.py``, probes, metrics, the dashboard); :mod:`cidash.metrics` holds the Prometheus
metric objects.

May import every step below it (domain, store, health, alerts, live) and the cross-cutting
modules; never ``service`` or ``cli``.
"""

from cidash.api.app import create_app

__all__ = ["create_app"]
