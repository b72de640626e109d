"""The domain: values every step shares, with no I/O: the observed comment, the read models of
``/api/v1`` (``views``), the one classification of a result (``results``), the health model's
rules and states (``health``), the relative judgement of a failed run that incidents and the
recheck burden share (``judgement``), and text helpers (clipping, safe URLs, time spans read and written).

May import only the standard library, pydantic and ``cidash.config``/``cidash.errors``.
"""
