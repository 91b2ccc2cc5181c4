"""Settings of every process, from ``I247_*`` environment variables.

One frozen model, read once at start; compose.yaml, the CLI and the tests set the same
names, so these names are a contract:

| variable | default | accepts |
|---|---|---|
| ``I247_BOOTSTRAP`` | unset: start the embedded broker | ``host:port[,host:port...]`` |
| ``I247_TOPIC_PREFIX`` | ``i247`` | 1-64 letters, digits, ``_`` or ``-`` |
| ``I247_SESSION_TIMEOUT_MS`` | 6000 | 1000-1800000; Tansu holds a join for half of it |
| ``I247_HEARTBEAT_INTERVAL_MS`` | 1500 | 100 up to below the session timeout |
| ``I247_FETCH_MAX_WAIT_MS`` | 10 | 1-60000; 0 spins Tansu; on Tansu it *is* the latency |
| ``I247_IDLE_FETCH_WAIT_MS`` | 250 | 1-60000; the fetch wait a consumer grows to while idle |
| ``I247_MAX_MESSAGE_BYTES`` | 1048576 | 1024-67108864; the application enforces it |
| ``I247_REPLICATION_FACTOR`` | 1 | 1-32767; 3 on the compose cluster |
| ``I247_INBOUND_PARTITIONS`` | 4 | 1-10000 |
| ``I247_DATA_DIR`` | ``var`` | a directory: broker log, hub state, run output |
| ``I247_KEYS_DIR`` | ``<data dir>/keys`` | a directory of key files |
| ``I247_FRESHNESS_SECONDS`` | 300 | seconds > 0 a message may age before it is stale |
| ``I247_CLOCK_SCALE`` | 1.0 | > 0; divides minutes-long clocks (handling, confirmations) |
| ``I247_CALENDAR_SCALE`` | unset: clock scale | > 0; divides hours to years (arrivals, notices) |
| ``I247_LEASE_TTL_MS`` | 3000 | 500-600000; a hub silent this long loses its work |
| ``I247_SHIFT_SECONDS`` | unset: real 8-hour shifts | > 0; compressed duty shifts for demos |
| ``I247_LOG_LEVEL`` | ``info`` | debug, info, warning, error, critical |
| ``I247_DB_SCALE`` | 1.0 | 0 < x <= 1; the simulated databases' share of full size |
| ``I247_SECURITY`` | ``plaintext`` | ``plaintext``, ``tls``, or ``sasl_tls`` (SASL over TLS) |
| ``I247_TLS_CA`` | ``<keys dir>/tls/ca.pem`` | the CA certificate clients trust |
| ``I247_TLS_CERT`` | ``<keys dir>/tls/broker.pem`` | the embedded broker's certificate |
| ``I247_TLS_KEY`` | ``<keys dir>/tls/broker.key`` | the embedded broker's private key |
| ``I247_SASL_MECHANISM`` | ``SCRAM-SHA-512`` | ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` |
| ``I247_SASL_USERNAME`` | unset | this process's principal (required with ``sasl_tls``) |
| ``I247_SASL_PASSWORD`` | unset | its password (required with ``sasl_tls``; never logged) |
| ``I247_SASL_PASSWORD_FILE`` | unset | a file holding the password instead (compose's secrets) |
| ``I247_METRICS_PORT`` | 0: off | 0-65535; a hub's or the archiver's /metrics, /healthz, /readyz |
| ``I247_TRACES`` | ``off`` | ``off``, ``console`` (spans on stdout), ``otlp`` (OTLP/HTTP) |
| ``I247_TRACE_SAMPLE`` | 1.0 | 0-1: share of traces recorded (by trace id, alike everywhere) |

Full size (``I247_DB_SCALE=1``): SLTD 1,000,000, SMV 200,000, Works of Art 47,000
(``database_sizes``); tests use 0.01. Each size is built once under ``<data dir>/databases``.

An empty variable counts as unset. More names belong to the processes that read them, not
to this model (``PROCESS_VARIABLES``): ``I247_CONNECT_VIA`` (``brokers.connect_via``;
checked here too), ``I247_GATE_USERS`` (the embedded broker's gate), ``I247_LOG_FILE``
(where a child process logs) and ``I247_MEMORY_CENSUS`` (a hub's allocation census). Any
other ``I247_*`` name is refused, naming the closest known one: a misspelt variable would
otherwise be ignored in silence.

``VARIABLES`` is the one registry of names. To add a variable: a field here (every process
reads it; ``json_schema_extra`` gives its help group) or an entry in ``PROCESS_VARIABLES``
(one process reads it itself). ``i247 <command> --help`` lists each command's from here.

A process that starts another (the demo, the soak, the benches, the test harness) hands it
its settings as ``os.environ | settings.replace(...).to_env(log_file=...)``: every field,
so a field added here reaches every child with no launcher to edit.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from brokers.connect_via import InvalidConnectVia, parse_connect_via
from schemas.topics import TopicCatalog

__all__ = [
    "ENV_NAMES",
    "ENV_PREFIX",
    "GROUPS",
    "PROCESS_VARIABLES",
    "VARIABLES",
    "Settings",
    "SettingsError",
    "Variable",
    "unknown_variables",
]

ENV_PREFIX = "I247_"
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
Security = Literal["plaintext", "tls", "sasl_tls"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
TraceExport = Literal["off", "console", "otlp"]

GROUPS: dict[str, str] = {
    "broker": "reaching the broker",
    "topics": "topics",
    "files": "files",
    "ccc": "the CCC's clocks and limits",
    "logs": "logs",
    "metrics": "metrics and health probes (a hub, the archiver)",
    "traces": "traces (OpenTelemetry spans: hubs and bureaus' clients)",
    "other": "other",
}
"""Help groups of variables; each command's help lists the groups it reads ("other", a
field given no group, in every command's)."""


def _group(name: str, shown: str | None = None) -> dict[str, Any]:
    """A field's help group and, where the default needs words, how to show it."""
    return {"group": name} | ({"shown": shown} if shown is not None else {})


class SettingsError(ValueError):
    """An ``I247_*`` variable holds a value the backbone cannot use; the message names it."""


class Settings(BaseModel):
    """Connection, topic and pacing settings; each field is the variable ``I247_<FIELD>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap: str | None = Field(
        None,
        description="host:port[,host:port...] of a running broker, or unset",
        json_schema_extra=_group("broker", "unset: the embedded broker"),
    )
    topic_prefix: str = Field(
        "i247", description="a prefix such as i247", json_schema_extra=_group("topics")
    )
    session_timeout_ms: int = Field(
        6000,
        ge=1000,
        le=1_800_000,
        description="an integer 1000-1800000 (ms)",
        json_schema_extra=_group("broker"),
    )
    heartbeat_interval_ms: int = Field(
        1500,
        ge=100,
        description="an integer from 100 (ms), below the session timeout",
        json_schema_extra=_group("broker"),
    )
    fetch_max_wait_ms: int = Field(
        10,
        ge=1,
        le=60_000,
        description="an integer 1-60000 (ms); 0 never returns and spins Tansu",
        json_schema_extra=_group("broker"),
    )
    idle_fetch_wait_ms: int = Field(
        250, ge=1, le=60_000, description="an integer 1-60000 (ms), the fetch wait when idle"
    )
    max_message_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="an integer 1024-67108864 (bytes)",
        json_schema_extra=_group("broker"),
    )
    replication_factor: int = Field(
        1, ge=1, le=32_767, description="an integer 1-32767", json_schema_extra=_group("topics")
    )
    inbound_partitions: int = Field(
        4, ge=1, le=10_000, description="an integer 1-10000", json_schema_extra=_group("topics")
    )
    data_dir: Path = Field(
        Path("var"), description="a directory path", json_schema_extra=_group("files")
    )
    keys_dir: Path = Field(
        Path("var/keys"),
        description="a directory path",
        json_schema_extra=_group("files", "<data dir>/keys"),
    )
    freshness_seconds: float = Field(
        300.0,
        gt=0,
        allow_inf_nan=False,
        description="a number of seconds > 0",
        json_schema_extra=_group("ccc"),
    )
    clock_scale: float = Field(
        1.0,
        gt=0,
        allow_inf_nan=False,
        description="a finite number > 0 (2 = clocks run 2x fast)",
        json_schema_extra=_group("ccc"),
    )
    calendar_scale: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="a finite number > 0, or unset",
        json_schema_extra=_group("ccc", "unset: the clock scale"),
    )
    lease_ttl_ms: int = Field(
        3000,
        ge=500,
        le=600_000,
        description="an integer 500-600000",
        json_schema_extra=_group("ccc"),
    )
    shift_seconds: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="seconds > 0 per duty shift",
        json_schema_extra=_group("ccc", "unset: real 8-hour shifts"),
    )
    log_level: LogLevel = Field(
        "info",
        description="one of debug, info, warning, error, critical",
        json_schema_extra=_group("logs"),
    )
    db_scale: float = Field(
        1.0,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="a number 0 < x <= 1 (1 = full size)",
        json_schema_extra=_group("ccc"),
    )
    security: Security = Field(
        "plaintext",
        description="one of plaintext, tls, sasl_tls (SASL over TLS)",
        json_schema_extra=_group("broker"),
    )
    tls_ca: Path | None = Field(
        None,
        description="a CA certificate file (PEM)",
        json_schema_extra=_group("broker", "<keys dir>/tls/ca.pem"),
    )
    tls_cert: Path | None = Field(
        None,
        description="a certificate file (PEM)",
        json_schema_extra=_group("broker", "<keys dir>/tls/broker.pem"),
    )
    tls_key: Path | None = Field(
        None,
        description="a private key file (PEM)",
        json_schema_extra=_group("broker", "<keys dir>/tls/broker.key"),
    )
    sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512",
        description="one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        json_schema_extra=_group("broker"),
    )
    sasl_username: str | None = Field(
        None, min_length=1, description="a principal name", json_schema_extra=_group("broker")
    )
    sasl_password: SecretStr | None = Field(
        None, description="the principal's password", json_schema_extra=_group("broker")
    )
    sasl_password_file: Path | None = Field(
        None,
        description="a readable file holding the password",
        json_schema_extra=_group("broker"),
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65_535,
        description="a TCP port 1-65535, or 0 for no metrics server",
        json_schema_extra=_group("metrics", "0: off"),
    )
    traces: TraceExport = Field(
        "off",
        description="one of off, console (spans on stdout), otlp (to OTEL_EXPORTER_OTLP_ENDPOINT)",
        json_schema_extra=_group("traces"),
    )
    trace_sample: float = Field(
        1.0,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="a share 0-1 of traces recorded, decided by trace id (alike in every process)",
        json_schema_extra=_group("traces"),
    )

    @model_validator(mode="before")
    @classmethod
    def _keys_beside_data(cls, values: Any) -> Any:
        """``keys_dir`` defaults to ``<data_dir>/keys``, wherever the data directory is."""
        if isinstance(values, dict) and values.get("keys_dir") is None:
            values = {**values, "keys_dir": Path(values.get("data_dir") or "var") / "keys"}
        return values

    @field_validator("bootstrap", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if not entries:
            return None
        for entry in entries:
            match = _ADDRESS.match(entry)
            if not match or not 0 < int(match.group(2)) < 65536:
                raise ValueError(f"{entry!r} is not host:port (no scheme, port 1-65535)")
        return ",".join(entries)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        TopicCatalog(value)  # the catalog owns the rule and its message
        return value

    @field_validator("log_level", "security", "traces", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("sasl_mechanism", mode="before")
    @classmethod
    def _uppercase(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Settings:
        has_secret = bool(self.sasl_password) or self.sasl_password_file is not None
        if self.security == "sasl_tls" and (self.sasl_username is None or not has_secret):
            raise ValueError(
                "I247_SECURITY=sasl_tls needs I247_SASL_USERNAME and I247_SASL_PASSWORD "
                "(or I247_SASL_PASSWORD_FILE): the principal this process connects as"
            )
        return self

    def sasl_secret(self) -> str | None:
        """The SASL password: ``I247_SASL_PASSWORD``, else the file's (read now, not at start)."""
        if self.sasl_password is not None:
            return self.sasl_password.get_secret_value()
        if self.sasl_password_file is None:
            return None
        try:
            return self.sasl_password_file.read_text().strip()
        except OSError as exc:
            raise SettingsError(
                f"I247_SASL_PASSWORD_FILE={str(self.sasl_password_file)!r} cannot be read "
                f"({exc.strerror}); check the secrets volume (`i247 keys tls --kafka`)"
            ) from None

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> Settings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"I247_HEARTBEAT_INTERVAL_MS ({self.heartbeat_interval_ms}) must be below "
                f"I247_SESSION_TIMEOUT_MS ({self.session_timeout_ms}); a quarter of it is usual"
            )
        return self

    @property
    def calendar(self) -> float:
        """The scale of hours-to-years clocks: a demo compresses years, not only minutes."""
        return self.clock_scale if self.calendar_scale is None else self.calendar_scale

    @property
    def database_sizes(self) -> dict[str, int]:
        """Rows of SLTD, SMV and Works of Art at ``db_scale`` (at least 100 each)."""
        full = {"sltd": 1_000_000, "smv": 200_000, "works_of_art": 47_000}
        return {name: max(100, round(size * self.db_scale)) for name, size in full.items()}

    @property
    def tls_files(self) -> tuple[Path, Path, Path]:
        """CA, certificate and key: as set, else ``i247 keys tls``'s files under the keys dir."""
        tls_dir = self.keys_dir / "tls"
        return (
            self.tls_ca or tls_dir / "ca.pem",
            self.tls_cert or tls_dir / "broker.pem",
            self.tls_key or tls_dir / "broker.key",
        )

    @property
    def topics(self) -> TopicCatalog:
        """The topic names under this prefix."""
        return TopicCatalog(self.topic_prefix, inbound_partitions=self.inbound_partitions)

    def with_options(self, options: Mapping[str, tuple[str, Any]]) -> Settings:
        """A copy with fields set from command-line options (field -> (option, value)),
        validated as the environment is; ``SettingsError`` names the option."""
        values = self.model_dump() | {field: value for field, (_, value) in options.items()}
        try:
            return type(self).model_validate(values)
        except ValidationError as exc:
            named = {field: option for field, (option, _) in options.items()}
            raise SettingsError(_explain(exc, {}, named, values)) from None

    def to_env(self, *, log_file: Path | None = None) -> dict[str, str]:
        """Every field as its ``I247_*`` variable: the one way a launcher passes settings to a
        child process (``from_env`` of the result equals these settings).

        An unset field is given as "" (unset to ``from_env``), so a child never inherits a
        stale value from the launcher's own environment: ``os.environ | settings.to_env()``.
        The SASL password is written in clear, for a child's environment only; never log it.
        ``log_file`` sets ``I247_LOG_FILE``, where the child logs.
        """
        fields = type(self).model_fields
        env = {ENV_NAMES[field]: _env_value(getattr(self, field)) for field in fields}
        if log_file is not None:
            env[f"{ENV_PREFIX}LOG_FILE"] = str(log_file)
        return env

    def replace(self, **fields: Any) -> Settings:
        """A copy with ``fields`` changed, validated as a whole (``SettingsError`` if bad)."""
        return self.with_options({name: (ENV_NAMES[name], value) for name, value in fields.items()})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``I247_*`` from ``environ`` (default ``os.environ``); ``SettingsError`` if bad."""
        env = os.environ if environ is None else environ
        problems = [_unknown(name, closest) for name, closest in unknown_variables(env)]
        try:
            parse_connect_via(env.get("I247_CONNECT_VIA", ""))
        except InvalidConnectVia as exc:
            problems.append(f"I247_CONNECT_VIA={env.get('I247_CONNECT_VIA')!r}: {exc}")
        values = {
            field: env[var] for field, var in ENV_NAMES.items() if env.get(var, "").strip() != ""
        }
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            problems.append(_explain(exc, env))
        if problems:
            raise SettingsError("; ".join(problems))
        return settings


def _env_value(value: object) -> str:
    """A field's value as ``from_env`` reads it back: "" for unset, the secret in clear."""
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _unknown(name: str, closest: str | None) -> str:
    hint = f"did you mean {closest}?" if closest else "see `i247 --help` for the names"
    return f"{name} is not a variable the backbone reads; {hint} (unset it if it is not)"


def _explain(
    exc: ValidationError,
    env: Mapping[str, str],
    options: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> str:
    """One line per bad variable (or option): its name, its value, what went wrong, what
    is accepted."""
    lines = []
    for error in exc.errors(include_url=False):
        if not error["loc"]:  # a rule across fields; its message names the variables
            lines.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        field = str(error["loc"][0])
        accepts = Settings.model_fields[field].description
        problem = str(error["msg"]).removeprefix("Value error, ")
        if options and field in options:
            given = f"{options[field]} {(values or {}).get(field)}"
        else:
            given = f"{ENV_NAMES[field]}={env.get(ENV_NAMES[field])!r}"
        lines.append(f"{given}: {problem}; expected {accepts}")
    return "; ".join(lines)


ENV_NAMES: dict[str, str] = {name: f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
"""Field name -> environment variable, derived from the model so the two never drift."""


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``I247_*`` name: its default as help shows it, what it accepts, its help group."""

    name: str
    default: str
    accepts: str
    group: str


def _from_field(field: str) -> Variable:
    """A field's variable; a field given no group is listed under "other" (every command)."""
    info = Settings.model_fields[field]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    shown = extra.get("shown")
    default = "unset" if info.default is None else str(info.default)
    return Variable(
        ENV_NAMES[field],
        default if shown is None else str(shown),
        str(info.description or "see README, Configuration"),
        str(extra.get("group", "other")),
    )


PROCESS_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "I247_CONNECT_VIA",
        "unset",
        "advertised=dial host:port pairs, comma-separated: reach the broker via a proxy",
        "broker",
    ),
    Variable(
        "I247_GATE_USERS",
        "unset",
        "JSON {user: password}: what the embedded broker's access gate admits (set for it)",
        "broker",
    ),
    Variable(
        "I247_MEMORY_CENSUS",
        "unset: off",
        "seconds between a hub's memory-census log lines (tracemalloc; slows the hub)",
        "logs",
    ),
    Variable(
        "I247_LOG_FILE",
        "unset: stderr",
        "a file for the process's JSON log lines (the demo sets it for its children)",
        "logs",
    ),
)
"""Variables a process reads itself, outside ``Settings``."""

VARIABLES: dict[str, Variable] = {
    v.name: v for v in [*map(_from_field, Settings.model_fields), *PROCESS_VARIABLES]
}
"""Every ``I247_*`` name the backbone reads: the registry help, checks and docs use."""


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Each ``I247_*`` name set (not blank) in ``environ`` that nothing reads, with the
    closest known name."""
    known = {name.removeprefix(ENV_PREFIX): name for name in VARIABLES}
    unknown = sorted(
        n
        for n, value in environ.items()
        if n.startswith(ENV_PREFIX) and n not in VARIABLES and value.strip()
    )
    return [(name, _closest(name.removeprefix(ENV_PREFIX), known)) for name in unknown]


def _closest(suffix: str, known: Mapping[str, str]) -> str | None:
    """The known name whose part after ``I247_`` is nearest (the shared prefix says nothing)."""
    matches = difflib.get_close_matches(suffix.upper(), known, n=1, cutoff=0.6)
    return known[matches[0]] if matches else None
