"""Health, the service: how each CI system is doing, computed from the store on request.

Step: after the store (reads through :mod:`cidash.store.reads.health`), before the collector's
alerts and the API. May import ``cidash.domain``, ``cidash.config`` and ``cidash.store``; the store
never imports it. The model itself (rules, thresholds, states) is :mod:`cidash.domain.health`.
"""

from cidash.health.assess import assess, run_metrics
from cidash.health.cache import HealthCache, TTLCache

__all__ = ["HealthCache", "TTLCache", "assess", "run_metrics"]
