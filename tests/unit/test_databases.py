"""The simulated databases: VIN check digits, deterministic generation, build once, lookups."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from schemas.checks import Person
from streams.databases import Databases, open_databases, sltd, smv, works_of_art
from streams.databases.nominal import NominalIndex
from streams.databases.smv import check_digit, is_valid_vin
from streams.databases.text import draw, name_key, normalise, normalise_identifier

SEED = 11


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def databases(data_dir: Path) -> Iterator[Databases]:
    opened = open_databases(
        data_dir, seed=SEED, sltd_size=10_000, smv_size=5_000, works_of_art_size=3_000
    )
    yield opened
    opened.close()


# --- VIN check digit (49 CFR 565 / ISO 3779) ---


@pytest.mark.parametrize(
    ("vin", "digit"),
    [
        ("1M8GDM9AXKP042788", "X"),  # the textbook example: remainder 10
        ("11111111111111111", "1"),  # all ones: every weight once, 89 mod 11
        ("1HGCM82633A004352", "3"),
        ("5YJSA1E14HF000001", "8"),  # by hand: 40+56+6+10+4+3+10+10+72+48+2 = 261 = 23*11+8
    ],
)
def test_the_check_digit_is_the_weighted_sum_modulo_11(vin: str, digit: str) -> None:
    assert check_digit(vin) == digit


@pytest.mark.parametrize(
    ("vin", "valid"),
    [
        ("1M8GDM9AXKP042788", True),
        ("1M8GDM9A1KP042788", False),  # wrong check digit
        ("1M8GDM9AXKP042789", False),  # one character changed
        ("1M8GDM9AXKP04278", False),  # 16 characters
        ("1M8GDM9AXKP04278O", False),  # the letter O is not a VIN character
    ],
)
def test_is_valid_vin(vin: str, valid: bool) -> None:
    assert is_valid_vin(vin) is valid


def test_check_digit_refuses_characters_outside_the_vin_alphabet() -> None:
    with pytest.raises(ValueError, match="I, O, Q"):
        check_digit("1M8GDM9AXKP04278Q")


def test_every_generated_vin_is_valid() -> None:
    rows = list(islice(smv.generate(3), 2_000))
    assert all(is_valid_vin(row[0]) for row in rows)


# --- deterministic generation ---


@pytest.mark.parametrize("generate", [sltd.generate, smv.generate, works_of_art.generate])
def test_the_same_seed_gives_the_same_records_and_another_seed_others(generate: object) -> None:
    assert callable(generate)
    first = list(islice(generate(5), 500))
    assert first == list(islice(generate(5), 500))
    assert first != list(islice(generate(6), 500))


def test_document_numbers_follow_their_countrys_format() -> None:
    rows = list(islice(sltd.generate(1), 20_000))
    french_passports = [r[1] for r in rows if r[0] == "FRA" and r[2] == "passport"]
    assert french_passports
    for number in french_passports:
        assert number[:2].isdigit()
        assert number[2:4].isalpha()
        assert number[4:].isdigit()
    assert {r[3] for r in rows} == {"stolen", "lost", "revoked"}
    assert all("2002-01-01" <= r[4] <= "2025-12-31" for r in rows)


def test_draw_follows_the_pattern() -> None:
    rng = random.Random(0)
    plate = draw(rng, "AA-999-AA")
    assert len(plate) == 9
    assert plate[2] == plate[6] == "-"
    assert plate[:2].isalpha()
    assert plate[3:6].isdigit()
    assert plate[7:].isalpha()


# --- build once, reuse ---


def test_a_second_open_reuses_the_file_without_rebuilding(tmp_path: Path) -> None:
    first = sltd.open_sltd(tmp_path, seed=SEED, size=2_000)
    assert first.store.built
    assert len(first) == 2_000
    first.store.close()
    mtime = first.store.path.stat().st_mtime_ns
    second = sltd.open_sltd(tmp_path, seed=SEED, size=2_000)
    assert not second.store.built
    assert second.store.manifest == first.store.manifest
    assert second.store.path.stat().st_mtime_ns == mtime
    second.store.close()


def test_a_file_whose_manifest_disagrees_is_rebuilt(tmp_path: Path) -> None:
    built = sltd.open_sltd(tmp_path, seed=SEED, size=1_000)
    built.store.close()
    with sqlite3.connect(built.store.path) as connection:
        connection.execute("UPDATE manifest SET value = '999' WHERE key = 'seed'")
    again = sltd.open_sltd(tmp_path, seed=SEED, size=1_000)
    assert again.store.built
    assert again.store.manifest.seed == SEED
    again.store.close()


def test_the_stored_database_is_read_only(databases: Databases) -> None:
    with pytest.raises(sqlite3.OperationalError):
        databases.sltd.store.connection.execute("DELETE FROM sltd")


def test_another_seed_or_size_gets_its_own_file(tmp_path: Path) -> None:
    a = sltd.open_sltd(tmp_path, seed=1, size=500)
    b = sltd.open_sltd(tmp_path, seed=2, size=500)
    c = sltd.open_sltd(tmp_path, seed=1, size=600)
    assert len({a.store.path, b.store.path, c.store.path}) == 3
    assert a.sample(random.Random(0)) != b.sample(random.Random(0))
    for database in (a, b, c):
        database.store.close()


# --- lookups ---


def test_sltd_hits_a_stored_document_and_misses_an_unknown_one(databases: Databases) -> None:
    rng = random.Random(1)
    for _ in range(50):
        record = databases.sltd.sample(rng)
        assert databases.sltd.lookup(record.number, record.issuing_country) == record
        assert databases.sltd.lookup(record.number.lower(), record.issuing_country) == record
    assert databases.sltd.lookup("ZZ0000000", "FRA") is None


def test_smv_hits_by_vin_and_by_plate(databases: Databases) -> None:
    rng = random.Random(2)
    for _ in range(50):
        vehicle = databases.smv.sample(rng)
        assert databases.smv.lookup_vin(vehicle.vin) == vehicle
        assert vehicle in databases.smv.lookup_plate(vehicle.plate, vehicle.registration_country)
        spaced = f" {vehicle.plate.lower().replace('-', ' ')} "
        assert vehicle in databases.smv.lookup_plate(spaced, vehicle.registration_country)
    assert databases.smv.lookup_vin("1M8GDM9AXKP042788") is None


def test_works_of_art_are_found_by_title_and_artist_words(databases: Databases) -> None:
    rng = random.Random(3)
    for _ in range(20):
        work = databases.works_of_art.sample(rng)
        found = databases.works_of_art.search([work.title.upper(), work.artist])
        assert work in found
        assert all(
            set(name_key(w.title + " " + w.artist).split())
            >= set(name_key(work.title + " " + work.artist).split()) - works_of_art.STOP_WORDS
            for w in found
        )
    assert databases.works_of_art.search(["Zyzzyva"]) == ()
    assert databases.works_of_art.search(["of the"]) == ()


# --- names ---


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Müller", "muller"),
        ("  JEAN   Dupont ", "jean dupont"),
        ("Straße", "strasse"),
        ("Hans-Peter", "hans peter"),
        ("O'Brien", "obrien"),
        ("Çelik Yılmaz", "celik yılmaz"),  # a dotless i has no decomposition: kept
        ("José\tMaría", "jose maria"),
        ("Ἀλέξανδρος", "αλεξανδροσ"),  # casefold turns the final sigma into a plain one
    ],
)
def test_normalise(raw: str, normalised: str) -> None:
    assert normalise(raw) == normalised


def test_name_keys_ignore_word_order() -> None:
    assert name_key("DUPONT, Jean") == name_key("jean dupont") == "dupont jean"


def test_identifiers_lose_separators_and_case() -> None:
    assert normalise_identifier(" ab-123 cd.9/1 ") == "AB123CD91"


def test_nominal_index_follows_upserts_and_removals() -> None:
    index = NominalIndex()
    person = Person(
        family_name="Müller", forenames="Hans-Peter", date_of_birth="1970-01-31", nationality="DEU"
    )
    record = index.upsert("2026/1", person, issuing_ncb="DEU")
    assert index.lookup("hans peter MULLER") == (record,)
    assert index.lookup("Muller Hans Peter", date_of_birth="1970-01-31") == (record,)
    assert index.lookup("hans peter muller", date_of_birth="1971-01-31") == ()
    assert index.lookup("hans peter muller", nationality="AUT") == ()
    assert index.lookup("hans muller") == ()
    moved = person.model_copy(update={"family_name": "Meier"})
    index.upsert("2026/1", moved, issuing_ncb="DEU")  # the notice was updated
    assert index.lookup("hans peter muller") == ()
    assert len(index.lookup("Hans-Peter Meier")) == 1
    assert index.remove("2026/1") is True
    assert index.remove("2026/1") is False
    assert index.lookup("Hans-Peter Meier") == ()
    assert len(index) == 0
