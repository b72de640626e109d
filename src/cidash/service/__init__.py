"""Running cidash: assembling a replica from its settings (``runtime``), the process's event loop and
stop (``process``) and ``cidash demo`` (``demo``); uvicorn in our loop is :mod:`cidash.serving`.

The composition root: may import every other package; nothing but ``cli`` imports it.
"""
