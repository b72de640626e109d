"""The domain: values every step shares, with no I/O: the observed comment, the read models of
``/api/v1`` (``views``), and text helpers (clipping, safe URLs, time spans).

May import only the standard library, pydantic and ``cidash.config``/``cidash.errors``.
"""
