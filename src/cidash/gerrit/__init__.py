"""Everything cidash knows about Gerrit's wire protocols lives in this package."""
