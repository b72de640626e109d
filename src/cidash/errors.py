"""Errors that reach an operator as one clear line (the CLI prints them without a traceback)."""


class CidashError(Exception):
    """Base for every error cidash reports to a user in plain words."""


class ConfigError(CidashError):
    """The configuration is missing, malformed or points at something that does not exist."""


class GerritAuthError(CidashError):
    """Gerrit refused our credentials (401/403): retrying will not help."""


class GerritUnavailableError(CidashError):
    """Gerrit could not be reached or kept failing after retries."""


class DatabaseUnavailableError(CidashError):
    """The database could not be reached (or refused the connection)."""
