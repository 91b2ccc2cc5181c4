"""Settings of every process, from ``I247_*`` environment variables.

One model, read once at start: compose.yaml, the CLI and the tests set the same names.

| variable | default |
|---|---|
| ``I247_BOOTSTRAP`` | unset: start the embedded broker |
| ``I247_TOPIC_PREFIX`` | ``i247`` |
| ``I247_SESSION_TIMEOUT_MS`` | 6000 |
| ``I247_HEARTBEAT_INTERVAL_MS`` | 1500 |
| ``I247_FETCH_MAX_WAIT_MS`` | 10 (at least 1: 0 spins Tansu) |
| ``I247_MAX_MESSAGE_BYTES`` | 1048576 |
| ``I247_REPLICATION_FACTOR`` | 1 |
| ``I247_INBOUND_PARTITIONS`` | 4 |
| ``I247_DATA_DIR`` | ``var`` |
| ``I247_KEYS_DIR`` | ``<data dir>/keys`` |
| ``I247_FRESHNESS_SECONDS`` | 300 |
| ``I247_CLOCK_SCALE`` | 1.0 |
| ``I247_LOG_LEVEL`` | ``info`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.topics import TopicCatalog

__all__ = ["ENV_NAMES", "Settings", "SettingsError"]


class SettingsError(ValueError):
    """An ``I247_*`` variable holds a value the backbone cannot use."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap: str | None = None
    topic_prefix: str = "i247"
    session_timeout_ms: int = Field(6000, ge=1000)
    heartbeat_interval_ms: int = Field(1500, ge=100)
    fetch_max_wait_ms: int = Field(10, ge=1)
    max_message_bytes: int = Field(1_048_576, ge=1024)
    replication_factor: int = Field(1, ge=1)
    inbound_partitions: int = Field(4, ge=1)
    data_dir: Path = Path("var")
    keys_dir: Path = Path("var/keys")
    freshness_seconds: float = Field(300.0, gt=0)
    clock_scale: float = Field(1.0, gt=0)
    log_level: str = Field("info", pattern=r"^(debug|info|warning|error)$")

    @property
    def topics(self) -> TopicCatalog:
        return TopicCatalog(self.topic_prefix, inbound_partitions=self.inbound_partitions)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field_name, var in ENV_NAMES.items():
            raw = env.get(var)
            if raw is not None and raw != "":
                values[field_name] = raw
        if "keys_dir" not in values:
            values["keys_dir"] = str(Path(values.get("data_dir", "var")) / "keys")
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ENV_NAMES.get(str(first["loc"][0]), str(first["loc"][0]))
            raise SettingsError(f"{name}={env.get(name)!r}: {first['msg']}") from None
        try:
            settings.topics  # noqa: B018  (validates the prefix)
        except ValueError as exc:
            raise SettingsError(f"I247_TOPIC_PREFIX: {exc}") from None
        if settings.fetch_max_wait_ms < 1:
            raise SettingsError("I247_FETCH_MAX_WAIT_MS must be at least 1; 0 makes Tansu spin")
        return settings


ENV_NAMES: dict[str, str] = {name: f"I247_{name.upper()}" for name in Settings.model_fields}
