"""``Settings.to_env``: what a launcher hands a child process reads back as the same settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.settings import ENV_NAMES, Settings, SettingsError

SAMPLE = Settings(
    bootstrap="kafka-1:9093,kafka-2:9093",
    topic_prefix="t0a1",
    session_timeout_ms=12_000,
    heartbeat_interval_ms=3000,
    fetch_max_wait_ms=25,
    idle_fetch_wait_ms=500,
    max_message_bytes=2_097_152,
    replication_factor=3,
    inbound_partitions=6,
    data_dir=Path("/srv/i247"),
    keys_dir=Path("/run/keys"),
    freshness_seconds=2.5,
    clock_scale=60.0,
    calendar_scale=5_000_000.0,
    lease_ttl_ms=1500,
    shift_seconds=7.5,
    log_level="debug",
    db_scale=0.01,
    security="sasl_tls",
    tls_ca=Path("/run/tls/ca.pem"),
    tls_cert=Path("/run/tls/hub.pem"),
    tls_key=Path("/run/tls/hub.key"),
    sasl_mechanism="SCRAM-SHA-256",
    sasl_username="hub-lyon",
    sasl_password="s3cret with spaces",  # pydantic wraps it in a SecretStr
    sasl_password_file=Path("/run/secrets/hub-lyon"),
    metrics_port=9100,
)


def test_every_field_is_given_a_variable() -> None:
    assert set(Settings().to_env()) == set(ENV_NAMES.values())


@pytest.mark.parametrize("settings", [Settings(), SAMPLE], ids=["defaults", "sample"])
def test_a_child_reads_back_the_same_settings(settings: Settings) -> None:
    assert Settings.from_env(settings.to_env()) == settings


def test_the_sample_sets_each_field_it_names_away_from_its_default() -> None:
    defaults = Settings()
    assert len(SAMPLE.model_fields_set) >= 27  # every field there was when it was written
    same = [f for f in SAMPLE.model_fields_set if getattr(SAMPLE, f) == getattr(defaults, f)]
    assert same == []


def test_the_secret_travels_in_clear_and_tls_files_as_paths() -> None:
    env = SAMPLE.to_env()
    assert env["I247_SASL_PASSWORD"] == "s3cret with spaces"
    assert env["I247_TLS_CA"] == "/run/tls/ca.pem"
    assert env["I247_SECURITY"] == "sasl_tls"
    assert Settings.from_env(env).sasl_secret() == "s3cret with spaces"


def test_unset_fields_blank_a_stale_value_in_the_launchers_environment() -> None:
    stale = {"I247_BOOTSTRAP": "old:9092", "I247_SHIFT_SECONDS": "3"}
    assert Settings.from_env(stale | Settings().to_env()) == Settings()


def test_the_log_file_is_the_one_process_variable_added() -> None:
    env = Settings().to_env(log_file=Path("/var/log/hub.log"))
    assert env["I247_LOG_FILE"] == "/var/log/hub.log"
    assert Settings.from_env(env) == Settings()


def test_replace_validates_and_names_the_variable() -> None:
    assert Settings().replace(bootstrap="a:1").bootstrap == "a:1"
    with pytest.raises(SettingsError, match="I247_BOOTSTRAP"):
        Settings().replace(bootstrap="no port")


@given(
    scale=st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),
    db_scale=st.floats(min_value=1e-6, max_value=1.0),
    port=st.integers(0, 65_535),
    password=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1).filter(
        lambda p: p.strip() != ""
    ),
)
def test_numbers_and_secrets_survive_the_round_trip(
    scale: float, db_scale: float, port: int, password: str
) -> None:
    settings = Settings().replace(
        clock_scale=scale, db_scale=db_scale, metrics_port=port, sasl_password=password
    )
    assert Settings.from_env(settings.to_env()) == settings
