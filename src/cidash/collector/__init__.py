"""Collection: Gerrit (stream + backfill) -> parse -> store, per configured server."""
