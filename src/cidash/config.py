"""Settings: a TOML file (``--config``, default ``./cidash.toml`` when present) plus ``CIDASH_*`` env vars.

Environment variables win over the file; nested keys use ``__`` (``CIDASH_API__PORT=9000``).
Secrets are ``SecretStr`` so they never show up in a repr, a log line or an error message.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cidash.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("cidash.toml")
SUPPORTED_DB_SCHEMES = ("sqlite+aiosqlite", "mysql+aiomysql", "mariadb+aiomysql")


class GerritServer(BaseModel):
    """One Gerrit server to collect from."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    ssh_host: str = "127.0.0.1"
    ssh_port: int = Field(default=29418, ge=1, le=65535)
    ssh_user: str = "cidash"
    ssh_key: Path | None = None  # private key file; None uses the SSH agent / default keys
    known_hosts: Path | None = None  # OpenSSH known_hosts file to check the host key against
    host_key_fingerprint: str | None = None  # pinned "SHA256:..." fingerprint, alternative to known_hosts
    insecure_host_key: bool = False  # accept any host key (warns loudly); for labs only
    http_url: str = "http://127.0.0.1:8080"
    http_user: str | None = None
    http_password: SecretStr | None = None
    projects: list[str] = Field(default_factory=list)  # empty: every project
    ci_group: str | None = None  # Gerrit group whose members are CI accounts, e.g. "Third-Party CI"
    stream: bool = True
    backfill_interval_s: float = Field(default=300.0, gt=0)
    backfill_overlap_s: float = Field(default=120.0, ge=0)
    backfill_initial_s: float = Field(default=86400.0, gt=0)  # first run with no watermark: this far back
    backfill_page_size: int = Field(default=100, ge=1, le=500)
    backfill_concurrency: int = Field(default=4, ge=1, le=64)
    rest_attempts: int = Field(default=8, ge=1, le=20)  # per request: 429/5xx/network errors are retried
    rest_deadline_s: float = Field(default=120.0, gt=0, le=3600)  # per attempt, the whole body included
    rest_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)  # per response, decoded
    backfill_deadline_s: float = Field(default=1800.0, gt=0)  # per scheduled backfill pass
    keepalive_s: float = Field(default=30.0, gt=0)
    watchdog_s: float = Field(default=600.0, gt=0)  # no data at all for this long: reconnect

    @field_validator("ssh_key", "known_hosts")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("http_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("http_url must start with http:// or https://")
        return value.rstrip("/")


class ResultPatterns(BaseModel):
    """One pair of patterns (Python regexes, searched in the comment text without the
    ``Patch Set N:`` header): a match of `failure_pattern` makes the comment a FAILURE result,
    else a match of `success_pattern` a SUCCESS. Either may be left out."""

    model_config = {"extra": "forbid"}

    success_pattern: str | None = None
    failure_pattern: str | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> ResultPatterns:
        if self.success_pattern is None and self.failure_pattern is None:
            raise ValueError("a pattern pair needs success_pattern, failure_pattern or both")
        return self


class CISystemConfig(BaseModel):
    """A CI account an operator lists by hand (confirmed), with optional parsing overrides."""

    account: str = Field(min_length=1)  # Gerrit username (or email / name when it has none)
    server: str | None = None  # None: this account on every server
    display_name: str | None = None
    owner: str | None = None  # operator contact
    reference: bool = False  # the CI every other one is compared with (OpenStack: Zuul)
    projects: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)  # fnmatch patterns it tests (coverage); empty: all
    result_regex: str | None = None  # overrides; see cidash.parsing
    job_regex: str | None = None
    start_regex: str | None = None
    # result patterns as operators keep them per CI account: one pair here, more in `patterns`
    success_pattern: str | None = None
    failure_pattern: str | None = None
    patterns: list[ResultPatterns] = Field(default_factory=list)
    # regexes that aim a human comment at this CI as a recheck (cidash.parsing.rechecks), besides
    # `recheck-<name>`, `<name>: recheck` and `recheck <name>`
    recheck_patterns: list[str] = Field(default_factory=list)

    @field_validator("recheck_patterns")
    @classmethod
    def _valid_regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regex: {exc}") from None
        return patterns

    def pattern_pairs(self) -> list[ResultPatterns]:
        """Every pattern pair of this CI, the top-level one first."""
        pairs = list(self.patterns)
        if self.success_pattern is not None or self.failure_pattern is not None:
            pairs.insert(0, ResultPatterns(success_pattern=self.success_pattern, failure_pattern=self.failure_pattern))
        return pairs


class ApiConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    write_token: SecretStr | None = None
    read_token: SecretStr | None = None
    public_badges: bool = False  # badges open to anyone (for READMEs) even when reads need read_token
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)  # any request body (413 above), any websocket message
    max_live_clients: int = Field(default=10_000, ge=1)  # websocket + SSE subscribers of this process
    # open connections uvicorn serves (limit_concurrency; 503 past it): above max_live_clients, so the live
    # clients' own clear refusal (1013 / 503 Retry-After) is what a crowd of subscribers sees first
    max_connections: int = Field(default=12_000, ge=1)


# "recovered" is accepted from older configs and does nothing: an incident's resolve edge says it
AlertKind = Literal["failure", "consecutive_failures", "failure_rate", "silent", "unreadable", "recovered"]
Severity = Literal["info", "warning", "critical"]


class WebhookConfig(BaseModel):
    """Where an alert rule POSTs its alerts (JSON of AlertOut), signed with `secret` when set."""

    model_config = {"extra": "forbid"}

    url: str
    secret: SecretStr | None = None  # X-Cidash-Signature: sha256=<hex HMAC-SHA256 of b"<timestamp>." + body>

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        return value


class WebhookDeliveryConfig(BaseModel):
    """How webhooks are delivered (see cidash.alerts.webhooks): the limits of one receiver's lane."""

    model_config = {"extra": "forbid"}

    deadline_s: float = Field(default=10.0, gt=0, le=600)  # per attempt: connect, send, status and headers
    attempts: int = Field(default=5, ge=1, le=20)  # 5xx, 408, 429, timeouts and connection errors are retried
    backoff_s: float = Field(default=1.0, ge=0, le=600)  # first retry after about this long, doubling
    max_backoff_s: float = Field(default=60.0, ge=0, le=3600)
    concurrency: int = Field(default=4, ge=1, le=64)  # deliveries under way at once, per receiver
    backlog: int = Field(default=1000, ge=1, le=1_000_000)  # queued per receiver; when full the oldest is dropped


class AlertRuleConfig(BaseModel):
    """One alert rule: a condition that opens an incident per CI (and per project with
    ``per_project``) when it holds and resolves it when it clears. The parameters a kind does not
    use are ignored. Failures count only when judged against the CI (see :mod:`cidash.alerts.model`).

    * ``failure``: a counted failure, until the next success.
    * ``consecutive_failures``: ``count`` counted failures in a row.
    * ``failure_rate``: more than ``threshold`` of the judged runs failed over ``window_s``, with at
      least ``min_runs`` of them.
    * ``silent``: no comment while a patch set in its projects waited ``silent_s``.
    * ``unreadable``: more than ``threshold`` of its comments over ``window_s`` (of its last
      ``min_runs`` when the window holds fewer) were neither a result nor a start.

    Damping: the condition must hold ``for_s`` seconds and over ``for_runs`` counted failures
    before the incident opens, and be clear ``clear_s`` seconds and over ``clear_runs`` judged
    passes before it resolves (None: the kind's default, :data:`cidash.alerts.model.DEFAULT_DAMPING`).
    An incident that lasted ``escalate_after_s`` is critical whatever its ``severity``.
    """

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=128)
    kind: AlertKind
    ci: list[str] = Field(default_factory=list)  # CI names (account keys); empty: every CI
    projects: list[str] = Field(default_factory=list)  # empty: every project
    per_project: bool = False  # one incident per project instead of one per CI
    severity: Severity = "warning"
    escalate_after_s: float | None = Field(default=6 * 3600.0, gt=0)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    only_when_reference_passed: bool = True  # failure; kept for older configs (judgement is always relative)
    count: int = Field(default=3, ge=1, le=1000)  # consecutive_failures
    threshold: float = Field(default=0.5, ge=0.0, lt=1.0)  # failure_rate, unreadable
    window_s: float = Field(default=6 * 3600.0, gt=0)  # failure_rate, unreadable
    min_runs: int = Field(default=10, ge=1)  # failure_rate, unreadable
    silent_s: float = Field(default=6 * 3600.0, gt=0)  # silent
    for_s: float | None = Field(default=None, ge=0)
    for_runs: int | None = Field(default=None, ge=1)
    clear_s: float | None = Field(default=None, ge=0)
    clear_runs: int | None = Field(default=None, ge=1)


class AlertmanagerConfig(BaseModel):
    """A Prometheus Alertmanager that cidash pushes its notifying incidents to (``/api/v2/alerts``)."""

    model_config = {"extra": "forbid"}

    url: str  # e.g. http://alertmanager:9093
    resend_s: float = Field(default=60.0, gt=0)  # firing incidents are re-sent this often
    dashboard_url: str = "http://127.0.0.1:8080"  # generatorURL: <dashboard_url>/#/incidents/<id>

    @field_validator("url", "dashboard_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CIDASH_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    database_url: str = "sqlite+aiosqlite:///./cidash.db"
    journal_retention_days: float = Field(default=14.0, gt=0)
    dead_letter_retention_days: float = Field(default=90.0, gt=0)
    collection_retention_days: float = Field(default=90.0, gt=0)  # stream sessions and backfill passes
    redis_url: str | None = None
    redis_prefix: str = Field(default="cidash", pattern=r"^[A-Za-z0-9_.:-]+$")  # channel <prefix>:feed
    role: Literal["all", "api", "collector"] = "all"
    servers: list[GerritServer] = Field(default_factory=list)
    ci: list[CISystemConfig] = Field(default_factory=list)
    api: ApiConfig = Field(default_factory=ApiConfig)
    auto_detect_ci: bool = True
    alerts: list[AlertRuleConfig] = Field(default_factory=list)
    webhook_delivery: WebhookDeliveryConfig = Field(default_factory=WebhookDeliveryConfig)
    alert_notify_within_s: float = Field(default=3600.0, gt=0)  # older conditions (history) notify no one
    alertmanager: AlertmanagerConfig | None = None

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if scheme not in SUPPORTED_DB_SCHEMES:
            raise ValueError(f"unsupported database scheme {scheme!r}; use one of {', '.join(SUPPORTED_DB_SCHEMES)}")
        return value

    @model_validator(mode="after")
    def _unique_servers(self) -> Settings:
        names = [server.name for server in self.servers]
        if len(names) != len(set(names)):
            raise ValueError("server names must be unique")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry the TOML file's content; the environment overrides it.
        return (env_settings, init_settings)

    def server(self, name: str) -> GerritServer:
        for server in self.servers:
            if server.name == name:
                return server
        raise ConfigError(f"no Gerrit server named {name!r} in the configuration")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "config"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"invalid configuration at {where}: {first['msg']}{more}"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (explicit path must exist; the default one is optional) and the environment."""
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
    elif os.environ.get("CIDASH_CONFIG"):
        data = _read_toml(Path(os.environ["CIDASH_CONFIG"]))
    elif DEFAULT_CONFIG_PATH.is_file():
        data = _read_toml(DEFAULT_CONFIG_PATH)
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
