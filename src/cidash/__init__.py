"""cidash: live health dashboard for the CI systems that vote on Gerrit code review."""

__version__ = "0.1.0"
