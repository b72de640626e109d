"""Alerting: the incident model (``model``), the engine that keeps incidents true to the stored
runs (``engine``), and where their edges go (``webhooks``, ``alertmanager``).

May import ``domain``, ``store``, ``health`` and below; never ``api``, ``live`` or ``service``.
"""
