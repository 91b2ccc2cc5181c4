"""``i247``'s one error handler: one line on stderr, a documented exit code, per case.

These run ``agents.cli.main`` in the test process on cases that need no broker; the
broker cases (a closed port, a broker without the topics) are in
tests/integration/test_cli_errors.py.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from agents.cli import main
from agents.cli_errors import EXIT_CODES, Terminated, explain
from agents.ops.hub_events import InvalidSchedule
from brokers.archive_store import ArchiveUnreadable
from brokers.embedded import EmbeddedBrokerError
from brokers.provisioning import (
    BrokerUnreachable,
    ProvisionError,
    TopicsNotProvisioned,
    missing_topics,
)
from brokers.settings import SettingsError
from brokers.tracing import TracingNotInstalled
from schemas.keys import KeyFileError
from schemas.topics import TopicCatalog


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No I247_* from the outside; the data directory under tmp_path."""
    for name in [n for n in os.environ if n.startswith("I247_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("I247_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("error", "code", "says"),
    [
        (SettingsError("I247_X='y': bad"), 2, "I247_X"),
        (InvalidSchedule("--fail-hub 'paris@20s': write SITE@Ns"), 2, "SITE@Ns"),
        (ProvisionError("I247_REPLICATION_FACTOR must not exceed"), 2, "REPLICATION"),
        (BrokerUnreachable("h:1", "connection failed"), 3, "I247_BOOTSTRAP"),
        (TopicsNotProvisioned("h:1", ["a", "b", "c", "d"]), 3, "run `i247 provision`"),
        (KeyFileError("no key directory at k; run `i247 keys init`"), 3, "keys init"),
        (ArchiveUnreadable(Path("f"), "file is not a database"), 3, "not a readable"),
        (PermissionError(errno.EACCES, "Permission denied", "/ro/keys"), 3, "/ro/keys"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), 3, "/x"),
        (sqlite3.DatabaseError("file is not a database"), 3, "SQLite"),
        (KafkaConnectionError("gone"), 3, "I247_BOOTSTRAP"),
        (EmbeddedBrokerError("tansu exited; set I247_BOOTSTRAP=host:port"), 3, "tansu"),
        (TracingNotInstalled("I247_TRACES=otlp needs the OTLP exporter: pip"), 3, "otlp"),
        (ExceptionGroup("tasks", [BrokerUnreachable("h:1", "x")]), 3, "h:1"),
        (RuntimeError("multi\nline"), 4, "--traceback"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (Terminated("terminated (SIGTERM); every process it started is stopped"), 143, "SIGTERM"),
    ],
)
def test_each_error_has_its_code_and_one_line_that_says_what_to_do(
    error: BaseException, code: int, says: str
) -> None:
    failure = explain(error)
    assert (failure.code, "\n" in failure.line) == (code, False)
    assert says in failure.line


def test_a_permission_error_names_the_path_and_what_to_do() -> None:
    line = explain(PermissionError(errno.EACCES, "Permission denied", "/ro/keys")).line
    assert (
        line == "Permission denied: /ro/keys; check its permissions, or choose a path you may write"
    )


def test_missing_topics_are_the_wanted_names_the_broker_lacks() -> None:
    catalog = TopicCatalog("p")
    wanted = catalog.core()
    present = [spec.name for spec in wanted if spec.name != catalog.control] + ["other"]
    assert missing_topics(present, wanted) == [catalog.control]
    assert missing_topics([], ["b", "a"]) == ["a", "b"]
    assert missing_topics(["a", "b"], ["a"]) == []


def test_keys_init_into_a_path_below_a_file_is_an_environment_error(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "a-file").write_text("")
    assert main(["keys", "init", "--dir", str(env / "a-file" / "keys")]) == 3
    line = one_line(capsys)
    assert line.startswith("i247 keys init: ")
    assert "a-file" in line
    assert "choose another" in line


@pytest.fixture
def unwritable(env: Path) -> Iterator[Path]:
    """A directory this process may not write into: read-only for a user; for root, who
    ignores permissions, immutable (``chattr +i``), made writable again afterwards."""
    locked = env / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() != 0:
        yield locked
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: no directory is unwritable to root")
    done = subprocess.run([chattr, "+i", str(locked)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"this filesystem cannot make a directory immutable: {done.stderr!r}")
    try:
        yield locked
    finally:
        subprocess.run([chattr, "-i", str(locked)], check=True)


def test_keys_init_into_an_unwritable_directory_is_an_environment_error(
    unwritable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init", "--dir", str(unwritable / "keys")]) == 3
    line = one_line(capsys)
    assert line.startswith("i247 keys init: ")
    assert str(unwritable / "keys") in line
    assert "check its permissions, or choose a path you may write" in line


def test_audit_verify_of_a_missing_archive_says_how_to_make_one(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", "--archive", "/nonexistent"]) == 3
    assert one_line(capsys) == (
        "i247 audit verify: no archive at /nonexistent; run `i247 archive --archive /nonexistent`"
    )


def test_replay_of_a_file_that_is_not_sqlite_says_so(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = env / "notes.txt"
    text.write_text("not an archive\n" * 100)
    assert main(["replay", "--archive", str(text)]) == 3
    line = one_line(capsys)
    assert f"{text} is not a readable audit archive" in line
    assert "--archive PATH" in line


def test_a_sqlite_file_that_is_not_an_archive_is_refused_too(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = env / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    prove = ["audit", "prove", "--archive", str(other), "--topic", "t", "--partition", "0"]
    assert main([*prove, "--offset", "0"]) == 3
    assert "not a readable audit archive" in one_line(capsys)


def test_demo_refuses_an_unknown_hub_before_anything_starts(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--fail-hub", "paris@20s"]) == 2
    assert one_line(capsys) == (
        "i247 demo: --fail-hub 'paris@20s': write SITE@Ns with SITE one of "
        "buenos-aires, lyon, singapore"
    )
    assert not (env / "data").exists()  # no run directory, no broker, no keys


def test_demo_options_are_validated_as_settings_are(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--calendar-scale", "-1"]) == 2
    line = one_line(capsys)
    assert line.startswith("i247 demo: --calendar-scale -1.0: ")
    assert "> 0" in line
    assert not (env / "data").exists()


@pytest.mark.parametrize("option", ["--rate", "--duration"])
def test_demo_numbers_out_of_range_are_usage_errors(
    env: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["demo", option, "0"])
    assert stop.value.code == 2
    assert "not a finite number > 0" in capsys.readouterr().err


def test_a_garbled_connect_via_is_a_configuration_error(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("I247_CONNECT_VIA", "garbage")
    assert main(["provision"]) == 2
    assert one_line(capsys) == (
        "i247 provision: I247_CONNECT_VIA='garbage': 'garbage' has no '='; expected advertised=dial"
    )


def test_a_misspelt_variable_is_refused_naming_the_closest(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("I247_" + "BOOTSTRAPS", "localhost:9092")
    assert main(["provision"]) == 2
    line = one_line(capsys)
    assert "I247_BOOTSTRAPS is not a variable" in line
    assert "did you mean I247_BOOTSTRAP?" in line


def test_a_hub_without_a_broker_says_which_variable_to_set(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hub", "--site", "lyon"]) == 2
    assert "set I247_BOOTSTRAP" in one_line(capsys)


def test_traceback_on_request_adds_the_trace(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--traceback", "audit", "verify", "--archive", "/nonexistent"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("i247 audit verify: no archive")


def test_version_comes_from_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"i247 {version('i247-backbone')}"


def test_the_main_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert EXIT_CODES in capsys.readouterr().out
