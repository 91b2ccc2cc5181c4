"""Settings: every ``I247_*`` variable, its default, and a refusal that names it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import brokers.settings
from brokers.settings import (
    ENV_NAMES,
    ENV_PREFIX,
    GROUPS,
    PROCESS_VARIABLES,
    VARIABLES,
    Settings,
    SettingsError,
    unknown_variables,
)


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.model_dump() == {
        "bootstrap": None,
        "topic_prefix": "i247",
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1500,
        "fetch_max_wait_ms": 10,
        "idle_fetch_wait_ms": 250,
        "max_message_bytes": 1_048_576,
        "replication_factor": 1,
        "inbound_partitions": 4,
        "data_dir": Path("var"),
        "keys_dir": Path("var/keys"),
        "freshness_seconds": 300.0,
        "clock_scale": 1.0,
        "calendar_scale": None,
        "lease_ttl_ms": 3000,
        "shift_seconds": None,
        "log_level": "info",
        "db_scale": 1.0,
        "security": "plaintext",
        "tls_ca": None,
        "tls_cert": None,
        "tls_key": None,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": None,
        "sasl_password": None,
        "sasl_password_file": None,
        "metrics_port": 0,
        "traces": "off",
        "trace_sample": 1.0,
    }
    assert settings.database_sizes == {"sltd": 1_000_000, "smv": 200_000, "works_of_art": 47_000}


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("I247_BOOTSTRAP", "kafka-1:9092,kafka-2:9092", "bootstrap", "kafka-1:9092,kafka-2:9092"),
        ("I247_BOOTSTRAP", " a:1 , b:2 ,", "bootstrap", "a:1,b:2"),
        ("I247_BOOTSTRAP", "[::1]:9092", "bootstrap", "[::1]:9092"),
        ("I247_TOPIC_PREFIX", "t1a2b3c", "topic_prefix", "t1a2b3c"),
        ("I247_SESSION_TIMEOUT_MS", "10000", "session_timeout_ms", 10_000),
        ("I247_HEARTBEAT_INTERVAL_MS", "1000", "heartbeat_interval_ms", 1000),
        ("I247_FETCH_MAX_WAIT_MS", "1", "fetch_max_wait_ms", 1),
        ("I247_MAX_MESSAGE_BYTES", "2048", "max_message_bytes", 2048),
        ("I247_LEASE_TTL_MS", "1500", "lease_ttl_ms", 1500),
        ("I247_SHIFT_SECONDS", "7.5", "shift_seconds", 7.5),
        ("I247_REPLICATION_FACTOR", "3", "replication_factor", 3),
        ("I247_INBOUND_PARTITIONS", "6", "inbound_partitions", 6),
        ("I247_DATA_DIR", "/data", "data_dir", Path("/data")),
        ("I247_KEYS_DIR", "/keys", "keys_dir", Path("/keys")),
        ("I247_FRESHNESS_SECONDS", "2.5", "freshness_seconds", 2.5),
        ("I247_CLOCK_SCALE", "60", "clock_scale", 60.0),
        ("I247_CALENDAR_SCALE", "5000000", "calendar_scale", 5_000_000.0),
        ("I247_LOG_LEVEL", "WARNING", "log_level", "warning"),
        ("I247_DB_SCALE", "0.01", "db_scale", 0.01),
    ],
)
def test_each_variable_sets_its_field(variable: str, raw: str, field: str, expected: Any) -> None:
    assert getattr(Settings.from_env({variable: raw}), field) == expected


@pytest.mark.parametrize(
    ("variable", "raw", "says"),
    [
        ("I247_BOOTSTRAP", "PLAINTEXT://kafka:9092", "no scheme"),
        ("I247_BOOTSTRAP", "kafka", "host:port"),
        ("I247_BOOTSTRAP", "kafka:70000", "port 1-65535"),
        ("I247_TOPIC_PREFIX", "a b", "letters, digits"),
        ("I247_TOPIC_PREFIX", "x" * 65, "1-64"),
        ("I247_SESSION_TIMEOUT_MS", "soon", "1000-1800000"),
        ("I247_SESSION_TIMEOUT_MS", "999", "1000-1800000"),
        ("I247_HEARTBEAT_INTERVAL_MS", "50", "from 100"),
        ("I247_FETCH_MAX_WAIT_MS", "0", "spins Tansu"),
        ("I247_FETCH_MAX_WAIT_MS", "-5", "spins Tansu"),
        ("I247_MAX_MESSAGE_BYTES", "1k", "1024-67108864"),
        ("I247_REPLICATION_FACTOR", "0", "1-32767"),
        ("I247_INBOUND_PARTITIONS", "2.5", "1-10000"),
        ("I247_FRESHNESS_SECONDS", "-1", "> 0"),
        ("I247_CLOCK_SCALE", "0", "> 0"),
        ("I247_CLOCK_SCALE", "inf", "finite"),
        ("I247_CLOCK_SCALE", "nan", "finite"),
        ("I247_LOG_LEVEL", "loud", "debug, info, warning, error, critical"),
        ("I247_DB_SCALE", "0", "0 < x <= 1"),
        ("I247_DB_SCALE", "2", "0 < x <= 1"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_accepts(
    variable: str, raw: str, says: str
) -> None:
    with pytest.raises(SettingsError) as refusal:
        Settings.from_env({variable: raw})
    assert f"{variable}={raw!r}" in str(refusal.value)
    assert says in str(refusal.value)


def test_a_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as refusal:
        Settings.from_env({"I247_SESSION_TIMEOUT_MS": "x", "I247_LOG_LEVEL": "loud"})
    assert "I247_SESSION_TIMEOUT_MS" in str(refusal.value)
    assert "I247_LOG_LEVEL" in str(refusal.value)


def test_a_heartbeat_not_below_the_session_timeout_names_both_variables() -> None:
    with pytest.raises(SettingsError, match=r"HEARTBEAT_INTERVAL_MS.*SESSION_TIMEOUT_MS"):
        Settings.from_env({"I247_SESSION_TIMEOUT_MS": "6000", "I247_HEARTBEAT_INTERVAL_MS": "6000"})


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_variable_counts_as_unset(blank: str) -> None:
    settings = Settings.from_env({"I247_BOOTSTRAP": blank, "I247_SESSION_TIMEOUT_MS": blank})
    assert settings.bootstrap is None
    assert settings.session_timeout_ms == 6000


@pytest.mark.parametrize(
    ("env", "keys_dir"),
    [
        ({}, Path("var/keys")),
        ({"I247_DATA_DIR": "/srv/i247"}, Path("/srv/i247/keys")),
        ({"I247_DATA_DIR": "/srv/i247", "I247_KEYS_DIR": "/keys"}, Path("/keys")),
    ],
)
def test_the_keys_live_beside_the_data_unless_told_otherwise(
    env: dict[str, str], keys_dir: Path
) -> None:
    assert Settings.from_env(env).keys_dir == keys_dir


def test_constructed_settings_put_the_keys_beside_the_data_too(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).keys_dir == tmp_path / "keys"


def test_other_i247_variables_belong_to_other_readers() -> None:
    assert (
        Settings.from_env({"I247_LOG_FILE": "hub.log", "I247_CONNECT_VIA": "a:1=b:2"}) == Settings()
    )


def test_without_a_mapping_the_process_environment_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("I247_TOPIC_PREFIX", "fromenv")
    assert Settings.from_env().topic_prefix == "fromenv"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.topic_prefix = "other"  # type: ignore[misc]


def test_the_topic_catalog_follows_the_prefix_and_partitions() -> None:
    topics = Settings.from_env({"I247_TOPIC_PREFIX": "x", "I247_INBOUND_PARTITIONS": "6"}).topics
    assert topics.inbound == "x.inbound"
    assert topics.core()[0].partitions == 6


def test_every_field_has_a_variable_and_every_variable_is_documented() -> None:
    assert set(ENV_NAMES) == set(Settings.model_fields)
    doc = brokers.settings.__doc__ or ""
    for variable in ENV_NAMES.values():
        assert f"``{variable}``" in doc, f"{variable} is missing from the module docstring"


def test_every_field_describes_what_it_accepts() -> None:
    assert all(field.description for field in Settings.model_fields.values())


def test_a_sasl_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "hub-lyon"
    secret.write_text("s3cret\n")
    env = {
        "I247_SECURITY": "sasl_tls",
        "I247_SASL_USERNAME": "hub-lyon",
        "I247_SASL_PASSWORD_FILE": str(secret),
    }
    assert Settings.from_env(env).sasl_secret() == "s3cret"
    missing = Settings.from_env({**env, "I247_SASL_PASSWORD_FILE": str(tmp_path / "missing")})
    with pytest.raises(SettingsError, match="I247_SASL_PASSWORD_FILE"):
        missing.sasl_secret()  # read when connecting, so settings parse before secrets exist


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("misspelt", "closest"),
    [
        ("BOOTSTRAPS", "I247_BOOTSTRAP"),
        ("KEY_DIR", "I247_KEYS_DIR"),
        ("log_level", "I247_LOG_LEVEL"),
        ("LOGFILE", "I247_LOG_FILE"),
        ("SESION_TIMEOUT_MS", "I247_SESSION_TIMEOUT_MS"),
    ],
)
def test_a_misspelt_variable_is_refused_naming_the_closest_known_one(
    misspelt: str, closest: str
) -> None:
    name = ENV_PREFIX + misspelt  # built, so the scan of the sources below does not see it
    with pytest.raises(SettingsError) as refusal:
        Settings.from_env({name: "1"})
    assert f"{name} is not a variable the backbone reads; did you mean {closest}?" in str(
        refusal.value
    )


def test_an_unknown_variable_with_nothing_close_says_where_the_names_are() -> None:
    assert unknown_variables({ENV_PREFIX + "QQQQ": "1", "HOME": "/root"}) == [
        (ENV_PREFIX + "QQQQ", None)
    ]
    with pytest.raises(SettingsError, match="see `i247 --help`"):
        Settings.from_env({ENV_PREFIX + "QQQQ": "1"})


def test_a_blank_unknown_variable_changes_nothing_and_is_let_be() -> None:
    assert Settings.from_env({ENV_PREFIX + "QQQQ": " "}) == Settings()


def test_a_garbled_connect_via_is_refused_with_the_settings() -> None:
    with pytest.raises(SettingsError, match=r"I247_CONNECT_VIA='garbage': .*advertised=dial"):
        Settings.from_env({"I247_CONNECT_VIA": "garbage"})


def test_the_registry_holds_every_field_and_the_process_variables() -> None:
    assert set(ENV_NAMES.values()) | {v.name for v in PROCESS_VARIABLES} == set(VARIABLES)
    assert {"I247_LOG_FILE", "I247_CONNECT_VIA"} <= set(VARIABLES)
    assert all(v.group in GROUPS and v.accepts and v.default for v in VARIABLES.values())


def test_every_i247_name_the_project_sets_or_reads_is_registered() -> None:
    sources = [
        *ROOT.glob("agents/*.py"),
        *ROOT.glob("brokers/*.py"),
        *ROOT.glob("streams/**/*.py"),
        *ROOT.glob("schemas/*.py"),
        *ROOT.glob("tests/integration/*.py"),
        *ROOT.glob("docs/*.md"),
        ROOT / "compose.yaml",
        ROOT / "Dockerfile",
        ROOT / "Makefile",
        ROOT / "README.md",
    ]
    used = {m for path in sources for m in re.findall(r"\bI247_[A-Z][A-Z_]*", path.read_text())}
    assert used - set(VARIABLES) == set()
    assert len(used) > 15  # the scan works


def test_command_line_options_are_validated_as_the_environment_is() -> None:
    settings = Settings().with_options({"clock_scale": ("--clock-scale", 30.0)})
    assert settings.clock_scale == 30.0
    with pytest.raises(SettingsError) as refusal:
        Settings().with_options({"shift_seconds": ("--shift-seconds", -1.0)})
    assert str(refusal.value).startswith("--shift-seconds -1.0: ")


def test_connect_via_installed_twice_patches_aiokafka_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiokafka.client

    from brokers.connect_via import install_connect_via

    monkeypatch.setattr(aiokafka.client, "create_conn", aiokafka.client.create_conn)
    original = aiokafka.client.create_conn
    assert install_connect_via({"I247_CONNECT_VIA": "a:1=b:2"}) == 1
    patched = aiokafka.client.create_conn
    assert patched is not original
    assert install_connect_via({"I247_CONNECT_VIA": "a:1=b:3,c:4=d:5"}) == 2  # the CLI, the hub
    assert aiokafka.client.create_conn is patched
