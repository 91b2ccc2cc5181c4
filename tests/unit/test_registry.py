"""The member registry: who the 196 NCBs are, where they sit, and the three CCC hubs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pycountry
import pytest
from pydantic import ValidationError

from schemas.header import Language
from schemas.participants import HUB_SITES, ParticipantKind, kind_of
from schemas.registry import (
    MEMBER_COUNT,
    Hub,
    Member,
    MemberRegistry,
    Region,
    UnknownMember,
    default_registry,
)

REGISTRY = default_registry()
ALL_CODES = REGISTRY.codes()


def _member(iso3: str, region: Region = Region.EUROPE) -> Member:
    return Member(
        iso3=iso3, name=iso3, region=region, timezone="Europe/Paris", language=Language.EN
    )


class TestMembership:
    def test_there_are_exactly_196_members(self) -> None:
        assert len(REGISTRY) == MEMBER_COUNT == 196
        assert len(REGISTRY.members) == 196

    def test_codes_are_unique_and_sorted(self) -> None:
        assert len(set(ALL_CODES)) == len(ALL_CODES)
        assert list(ALL_CODES) == sorted(ALL_CODES)
        assert tuple(m.iso3 for m in REGISTRY.members) == ALL_CODES

    @pytest.mark.parametrize("iso3", ALL_CODES)
    def test_every_code_is_an_iso_alpha3_code_pycountry_knows(self, iso3: str) -> None:
        assert pycountry.countries.get(alpha_3=iso3) is not None

    @pytest.mark.parametrize("iso3", ALL_CODES)
    def test_every_code_is_an_ncb_participant_id(self, iso3: str) -> None:
        assert kind_of(REGISTRY.get(iso3).participant) is ParticipantKind.NCB

    @pytest.mark.parametrize(
        ("iso3", "name"),
        [
            ("FRA", "France"),
            ("KOR", "South Korea"),  # pycountry's common name wins over the formal one
            ("BOL", "Bolivia"),
            ("GBR", "United Kingdom"),
        ],
    )
    def test_names_come_from_pycountry_preferring_the_common_name(
        self, iso3: str, name: str
    ) -> None:
        assert REGISTRY.get(iso3).name == name

    @pytest.mark.parametrize("iso3", ["VAT", "PSE", "ABW", "CUW", "SXM"])
    def test_the_five_non_un_members_are_included(self, iso3: str) -> None:
        assert iso3 in REGISTRY

    @pytest.mark.parametrize("iso3", ["PLW", "FSM", "KIR", "VUT", "SLB", "SSD"])
    def test_the_newest_members_are_included(self, iso3: str) -> None:
        assert iso3 in REGISTRY

    @pytest.mark.parametrize("iso3", ["PRK", "TUV", "TWN", "ESH", "GUM", "HKG"])
    def test_non_members_are_absent(self, iso3: str) -> None:
        assert iso3 not in REGISTRY


class TestTimezones:
    @pytest.mark.parametrize("member", REGISTRY.members, ids=lambda m: m.iso3)
    def test_every_member_timezone_resolves(self, member: Member) -> None:
        assert ZoneInfo(member.timezone).key == member.timezone


class TestRegions:
    @pytest.mark.parametrize("region", list(Region))
    def test_every_region_has_members(self, region: Region) -> None:
        assert REGISTRY.in_region(region)

    def test_the_five_regions_partition_the_membership(self) -> None:
        per_region = [{m.iso3 for m in REGISTRY.in_region(r)} for r in Region]
        assert sum(len(codes) for codes in per_region) == 196
        assert set().union(*per_region) == set(ALL_CODES)

    @pytest.mark.parametrize("region", list(Region))
    def test_a_region_lists_exactly_its_members_sorted(self, region: Region) -> None:
        listed = REGISTRY.in_region(region)
        assert listed == tuple(m for m in REGISTRY.members if m.region is region)

    def test_there_are_five_regions_named_as_interpol_names_them(self) -> None:
        assert [r.value for r in Region] == [
            "Africa",
            "Americas",
            "Asia and South Pacific",
            "Europe",
            "Middle East and North Africa",
        ]


class TestSpotChecks:
    @pytest.mark.parametrize(
        ("iso3", "region", "language"),
        [
            ("FRA", Region.EUROPE, Language.FR),
            ("ARG", Region.AMERICAS, Language.ES),
            ("SGP", Region.ASIA_SOUTH_PACIFIC, Language.EN),
            ("EGY", Region.MIDDLE_EAST_NORTH_AFRICA, Language.AR),
            ("SEN", Region.AFRICA, Language.FR),
            ("MAR", Region.MIDDLE_EAST_NORTH_AFRICA, Language.AR),
            ("PSE", Region.MIDDLE_EAST_NORTH_AFRICA, Language.AR),
            ("VAT", Region.EUROPE, Language.FR),
            ("USA", Region.AMERICAS, Language.EN),
            ("BRA", Region.AMERICAS, Language.ES),
            ("HTI", Region.AMERICAS, Language.FR),
            ("CUW", Region.AMERICAS, Language.EN),
            ("ISR", Region.EUROPE, Language.EN),
            ("TUR", Region.EUROPE, Language.EN),
            ("GEO", Region.EUROPE, Language.EN),
            ("IRN", Region.ASIA_SOUTH_PACIFIC, Language.EN),
            ("KAZ", Region.ASIA_SOUTH_PACIFIC, Language.EN),
            ("FJI", Region.ASIA_SOUTH_PACIFIC, Language.EN),
            ("SDN", Region.AFRICA, Language.AR),
            ("DJI", Region.AFRICA, Language.FR),
            ("GNQ", Region.AFRICA, Language.ES),
            ("KEN", Region.AFRICA, Language.EN),
        ],
    )
    def test_member_region_and_language(
        self, iso3: str, region: Region, language: Language
    ) -> None:
        member = REGISTRY.get(iso3)
        assert (member.region, member.language) == (region, language)

    @pytest.mark.parametrize(
        ("iso3", "timezone"),
        [("FRA", "Europe/Paris"), ("ARG", "America/Argentina/Buenos_Aires"), ("JPN", "Asia/Tokyo")],
    )
    def test_member_timezone_is_the_capitals(self, iso3: str, timezone: str) -> None:
        assert REGISTRY.get(iso3).timezone == timezone


class TestHubs:
    @pytest.mark.parametrize(
        ("site", "participant", "city", "timezone", "primary"),
        [
            ("lyon", "hub:lyon", "Lyon", "Europe/Paris", Language.FR),
            (
                "buenos-aires",
                "hub:buenos-aires",
                "Buenos Aires",
                "America/Argentina/Buenos_Aires",
                Language.ES,
            ),
            ("singapore", "hub:singapore", "Singapore", "Asia/Singapore", Language.EN),
        ],
    )
    def test_each_hub_site(
        self, site: str, participant: str, city: str, timezone: str, primary: Language
    ) -> None:
        hub = REGISTRY.hub(site)
        assert (hub.participant, hub.city, hub.timezone) == (participant, city, timezone)
        assert hub.languages[0] is primary

    def test_the_hubs_are_the_three_sites_in_order(self) -> None:
        assert tuple(hub.site for hub in REGISTRY.hubs) == HUB_SITES

    @pytest.mark.parametrize("hub", REGISTRY.hubs, ids=lambda h: h.site)
    def test_every_hub_answers_in_all_four_languages(self, hub: Hub) -> None:
        assert sorted(hub.languages) == sorted(Language)

    @pytest.mark.parametrize("hub", REGISTRY.hubs, ids=lambda h: h.site)
    def test_every_hub_timezone_resolves(self, hub: Hub) -> None:
        assert ZoneInfo(hub.timezone).key == hub.timezone

    def test_an_unknown_site_is_refused_naming_the_sites(self) -> None:
        with pytest.raises(ValueError, match="lyon, buenos-aires, singapore"):
            REGISTRY.hub("paris")

    def test_a_hub_at_an_unknown_site_cannot_be_built(self) -> None:
        with pytest.raises(ValidationError, match="unknown hub site"):
            Hub(site="paris", city="Paris", timezone="Europe/Paris", languages=(Language.FR,))

    def test_a_hub_lists_each_language_once(self) -> None:
        with pytest.raises(ValidationError, match="must not repeat"):
            Hub(
                site="lyon",
                city="Lyon",
                timezone="Europe/Paris",
                languages=(Language.FR, Language.FR),
            )


class TestLookup:
    def test_get_returns_the_member_with_that_code(self) -> None:
        assert REGISTRY.get("FRA").iso3 == "FRA"

    def test_membership_is_tested_by_code(self) -> None:
        assert "FRA" in REGISTRY
        assert "XXX" not in REGISTRY
        assert 250 not in REGISTRY

    def test_iterating_yields_the_members_in_code_order(self) -> None:
        assert tuple(REGISTRY) == REGISTRY.members

    def test_an_unknown_code_raises_unknown_member_a_key_error(self) -> None:
        with pytest.raises(KeyError) as caught:
            REGISTRY.get("XXX")
        assert isinstance(caught.value, UnknownMember)
        assert caught.value.code == "XXX"

    @pytest.mark.parametrize(
        ("code", "advice"),
        [
            ("XXX", "'XXX' is not an ISO 3166-1 alpha-3 country code: use a member's code"),
            ("XXX", "codes() lists all 196"),
            ("fra", "codes are upper case; use 'FRA'"),
            ("FR", "alpha-2 code: use the alpha-3 code 'FRA'"),
            ("PRK", "'PRK' (North Korea) is not an INTERPOL member country"),
        ],
    )
    def test_the_unknown_member_message_says_what_to_do(self, code: str, advice: str) -> None:
        with pytest.raises(UnknownMember) as caught:
            REGISTRY.get(code)
        assert advice in str(caught.value)


class TestConstruction:
    def test_the_default_registry_is_built_once(self) -> None:
        assert default_registry() is REGISTRY

    def test_members_are_immutable(self) -> None:
        with pytest.raises(ValidationError):
            REGISTRY.get("FRA").language = Language.EN  # type: ignore[misc]

    @pytest.mark.parametrize("iso3", ["fra", "FR", "FRAN", "F1A"])
    def test_a_member_code_is_three_capital_letters(self, iso3: str) -> None:
        with pytest.raises(ValidationError):
            _member(iso3)

    def test_a_registry_sorts_its_members_by_code(self) -> None:
        registry = MemberRegistry([_member("ZZZ"), _member("AAA")])
        assert registry.codes() == ("AAA", "ZZZ")

    def test_a_registry_refuses_repeated_codes(self) -> None:
        with pytest.raises(ValueError, match="must not repeat"):
            MemberRegistry([_member("AAA"), _member("AAA")])

    def test_a_region_without_members_is_empty(self) -> None:
        registry = MemberRegistry([_member("AAA", Region.EUROPE)])
        assert registry.in_region(Region.AFRICA) == ()

    def test_a_registry_without_hubs_refuses_a_valid_site(self) -> None:
        with pytest.raises(ValueError, match="no hub at 'lyon'"):
            MemberRegistry([_member("AAA")]).hub("lyon")
