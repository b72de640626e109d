"""Live messages, the step after the store and the alerts: the bus that carries feed messages
between replicas (Redis) or within one process (``bus.py``), and the hub that fans them out to an
application's subscribers in feed-id order (``hub.py``).

May import ``domain``, ``store`` and the cross-cutting modules; never ``api`` or ``service``.
The API's websocket and SSE endpoints read from it.
"""
