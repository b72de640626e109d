"""Errors that reach an operator as one clear line (the CLI prints them without a traceback).

The tree, in httpx's manner (catch the base to catch every kind below it)::

    CidashError                     anything cidash reports to a user in plain words
    ├── ConfigError                 the configuration is missing, malformed or names what does not exist
    │   └── RuleTooSlowError        (parsing.bounded) a CI's pattern ran past the rule tester's deadline
    ├── GerritAuthError             Gerrit refused our credentials: fix them, retrying will not help
    ├── GerritUnavailableError      Gerrit could not be reached, or kept failing after the retries
    │   └── ResponseTooLargeError   (gerrit.rest) an answer beyond the configured size limit
    ├── DatabaseUnavailableError    the database could not be reached or refused the connection
    ├── BusClosedError              (live.bus) a message was published after the bus closed
    ├── ClientError                 (client.http) the cidash API answered the CLI client with an error
    └── SimError                    (sim.runner) the simulator could not start

Where each surfaces: `cidash` commands print the message and exit non-zero; the collector logs a
Gerrit error and retries on its schedule (GerritAuthError stops that server's collector: retrying
with the same credentials cannot succeed). At start-up the store raises DatabaseUnavailableError
(open, migrate, wait for the schema); once running, a request whose database connection fails is
answered 503 with ``Retry-After`` (api/app.py), and the collector keeps what it holds and retries
(the backfill re-reads from the committed watermark after a restart).
"""


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
