"""Running cidash: assembling a replica from its settings (``runtime``), the process's event loop and
stop (``process``), uvicorn in our loop (``httpserver``) and ``cidash demo`` (``demo``).

The composition root: may import every other package; nothing but ``cli`` imports it.
"""
