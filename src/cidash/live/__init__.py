"""Live messages: the bus that carries feed messages between replicas (Redis) or within one process.

May import ``domain`` and below; the API's websocket and SSE endpoints read from it.
"""
