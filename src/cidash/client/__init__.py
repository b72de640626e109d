"""The command-line client of the cidash API ("python-radar"): `cidash systems`, `runs`, `grid`, `watch`...

`cidash.client.commands.register(app)` adds the commands to the main `cidash` app; `cidash.client.http`
speaks HTTP and the live websocket feed; `cidash.client.render` draws the rich tables.
"""

from cidash.client.http import ApiClient, ClientError, FeedWatcher, Subscription

__all__ = ["ApiClient", "ClientError", "FeedWatcher", "Subscription"]
