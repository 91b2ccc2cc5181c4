"""The 196 INTERPOL member countries and the three CCC hubs, as immutable data.

Every NCB adapter, inbox topic, key and regional alert is derived from this one list, so
it lives in the pure core: names come from ``pycountry``, the rest from the table below.

Membership (196) = the 193 UN member states, less North Korea and Tuvalu (the two UN
members outside INTERPOL), plus five non-UN members: the Holy See (Vatican City State,
2008), the State of Palestine (2017), Aruba, Curaçao and Sint Maarten (the Dutch Caribbean
countries; Curaçao and Sint Maarten since 2011). Sources: INTERPOL's release "Palau becomes
INTERPOL's 196th member country" (Vienna, 29 Nov 2023), the 2017-2021 admissions (Palestine,
Solomon Islands; Kiribati, Vanuatu; Micronesia) and the English Wikipedia "Interpol"
article (2024), which names North Korea and Tuvalu as the only UN members outside.

Regions follow INTERPOL's five regional groupings, with these judgement calls:

* Middle East and North Africa is the Arab states north of the Sahara and in Western Asia
  (Palestine included). Sudan and Mauritania (Arabic-speaking) stay in Africa, where their
  regional police bodies (EAPCCO, WAPCCO) sit, as do Comoros, Djibouti and Somalia.
* Israel, Turkey, Cyprus and the South Caucasus (Armenia, Azerbaijan, Georgia) are in
  Europe, as European police bodies group them (a judgement call, not an INTERPOL list).
* Iran, Afghanistan and the five Central Asian states are in Asia and South Pacific, as
  are all Pacific island states, Australia and New Zealand.

Languages are the CCC working language each NCB most plausibly uses: French for
francophone Africa, Belgium, Luxembourg, Monaco, Switzerland, Haiti, the Holy See (its
diplomatic tradition) and Lusophone Guinea-Bissau, Cabo Verde and São Tomé (members of
la Francophonie, among francophone neighbours); Spanish for Spanish-speaking states,
Andorra and Brazil (its nearest CCC language, answered by the Buenos Aires hub); Arabic
for Arab League states except Comoros, Djibouti (French) and Somalia (English); English
otherwise, including Angola, Mozambique and the Dutch Caribbean.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Annotated

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from schemas.header import Language
from schemas.participants import hub_id

__all__ = [
    "MEMBER_COUNT",
    "Hub",
    "Member",
    "MemberRegistry",
    "Region",
    "UnknownMember",
    "default_registry",
]

MEMBER_COUNT = 196


class Region(StrEnum):
    """INTERPOL's five regions; a regional alert goes to the members of one of them."""

    AFRICA = "Africa"
    AMERICAS = "Americas"
    ASIA_SOUTH_PACIFIC = "Asia and South Pacific"
    EUROPE = "Europe"
    MIDDLE_EAST_NORTH_AFRICA = "Middle East and North Africa"


Iso3 = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
TimeZoneName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)+$")]


class Member(BaseModel):
    """One member country, seen through its National Central Bureau."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    iso3: Iso3
    name: Annotated[str, StringConstraints(min_length=1)]
    region: Region
    timezone: TimeZoneName
    language: Language

    @property
    def participant(self) -> str:
        """The NCB's participant id on the backbone, which is its ISO alpha-3 code."""
        return self.iso3


def _check_site(site: str) -> str:
    hub_id(site)
    return site


def _check_languages(languages: tuple[Language, ...]) -> tuple[Language, ...]:
    if len(set(languages)) != len(languages):
        raise ValueError("hub languages must not repeat")
    return languages


class Hub(BaseModel):
    """One CCC operations room; ``languages`` lists the site's primary ones first."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    site: Annotated[str, AfterValidator(_check_site)]
    city: Annotated[str, StringConstraints(min_length=1)]
    timezone: TimeZoneName
    languages: Annotated[
        tuple[Language, ...], Field(min_length=1), AfterValidator(_check_languages)
    ]

    @property
    def participant(self) -> str:
        """The hub's participant id: ``hub:<site>``."""
        return hub_id(self.site)


class UnknownMember(KeyError):
    """A code that names no member of the registry: the caller's input is wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class MemberRegistry:
    """An immutable, indexed set of members and hubs; members are sorted by ``iso3``."""

    __slots__ = ("_by_code", "_by_region", "_hubs", "_members")

    def __init__(self, members: Iterable[Member], hubs: Iterable[Hub] = ()) -> None:
        ordered = tuple(sorted(members, key=lambda member: member.iso3))
        by_code = {member.iso3: member for member in ordered}
        if len(by_code) != len(ordered):
            raise ValueError("member codes must not repeat")
        hub_list = tuple(hubs)
        by_site = {hub.site: hub for hub in hub_list}
        if len(by_site) != len(hub_list):
            raise ValueError("hub sites must not repeat")
        self._members = ordered
        self._by_code: Mapping[str, Member] = MappingProxyType(by_code)
        self._by_region: Mapping[Region, tuple[Member, ...]] = MappingProxyType(
            {region: tuple(m for m in ordered if m.region is region) for region in Region}
        )
        self._hubs: Mapping[str, Hub] = MappingProxyType(by_site)

    @property
    def members(self) -> tuple[Member, ...]:
        """Every member, sorted by ISO alpha-3 code."""
        return self._members

    @property
    def hubs(self) -> tuple[Hub, ...]:
        """The CCC hubs in the order they were given (Lyon, Buenos Aires, Singapore)."""
        return tuple(self._hubs.values())

    def get(self, iso3: str) -> Member:
        """The member whose NCB is ``iso3``, or ``UnknownMember`` saying how to fix the code."""
        member = self._by_code.get(iso3)
        if member is None:
            raise UnknownMember(iso3, self._explain(iso3))
        return member

    def in_region(self, region: Region) -> tuple[Member, ...]:
        """The members of one region, sorted by ISO alpha-3 code."""
        return self._by_region[region]

    def codes(self) -> tuple[str, ...]:
        """Every member's ISO alpha-3 code (its NCB participant id), sorted."""
        return tuple(self._by_code)

    def hub(self, site: str) -> Hub:
        """The hub at ``site`` (``lyon``, ``buenos-aires``, ``singapore``)."""
        hub_id(site)  # raises ValueError naming the sites
        try:
            return self._hubs[site]
        except KeyError:
            raise ValueError(f"this registry has no hub at {site!r}") from None

    def __contains__(self, iso3: object) -> bool:
        return isinstance(iso3, str) and iso3 in self._by_code

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"MemberRegistry({len(self)} members, {len(self._hubs)} hubs)"

    def _explain(self, code: str) -> str:
        listing = f"MemberRegistry.codes() lists all {len(self)}"
        if code.upper() in self._by_code:
            return f"{code!r} is not a member code: codes are upper case; use {code.upper()!r}"
        iso3 = _iso3_of(code)
        if iso3 is not None and iso3 in self._by_code:
            return f"{code!r} is an ISO alpha-2 code: use the alpha-3 code {iso3!r}"
        if iso3 is not None:
            return f"{code!r} ({_name_of(iso3)}) is not an INTERPOL member country; {listing}"
        return (
            f"{code!r} is not an ISO 3166-1 alpha-3 country code: use a member's code such "
            f"as 'FRA'; {listing}"
        )


def _iso3_of(code: str) -> str | None:
    """The alpha-3 code ``code`` stands for, if it is an ISO alpha-3 or alpha-2 code."""
    if len(code) == 3:
        record = pycountry.countries.get(alpha_3=code)
    elif len(code) == 2:
        record = pycountry.countries.get(alpha_2=code)
    else:
        return None
    return None if record is None else str(record.alpha_3)


def _name_of(iso3: str) -> str:
    """The country's name as pycountry gives it: its common name if it has one."""
    record = pycountry.countries.get(alpha_3=iso3)
    if record is None:
        raise LookupError(f"pycountry does not know {iso3!r}; fix the registry table")
    return str(getattr(record, "common_name", None) or record.name)


_AR, _EN, _ES, _FR = Language.AR, Language.EN, Language.ES, Language.FR

# Region -> ISO alpha-3 -> (the capital's IANA zone, working language). Names: pycountry.
_TABLE: Mapping[Region, Mapping[str, tuple[str, Language]]] = {
    Region.AFRICA: {
        "AGO": ("Africa/Luanda", _EN),
        "BDI": ("Africa/Bujumbura", _FR),
        "BEN": ("Africa/Porto-Novo", _FR),
        "BFA": ("Africa/Ouagadougou", _FR),
        "BWA": ("Africa/Gaborone", _EN),
        "CAF": ("Africa/Bangui", _FR),
        "CIV": ("Africa/Abidjan", _FR),
        "CMR": ("Africa/Douala", _FR),
        "COD": ("Africa/Kinshasa", _FR),
        "COG": ("Africa/Brazzaville", _FR),
        "COM": ("Indian/Comoro", _FR),
        "CPV": ("Atlantic/Cape_Verde", _FR),
        "DJI": ("Africa/Djibouti", _FR),
        "ERI": ("Africa/Asmara", _EN),
        "ETH": ("Africa/Addis_Ababa", _EN),
        "GAB": ("Africa/Libreville", _FR),
        "GHA": ("Africa/Accra", _EN),
        "GIN": ("Africa/Conakry", _FR),
        "GMB": ("Africa/Banjul", _EN),
        "GNB": ("Africa/Bissau", _FR),
        "GNQ": ("Africa/Malabo", _ES),
        "KEN": ("Africa/Nairobi", _EN),
        "LBR": ("Africa/Monrovia", _EN),
        "LSO": ("Africa/Maseru", _EN),
        "MDG": ("Indian/Antananarivo", _FR),
        "MLI": ("Africa/Bamako", _FR),
        "MOZ": ("Africa/Maputo", _EN),
        "MRT": ("Africa/Nouakchott", _AR),
        "MUS": ("Indian/Mauritius", _EN),
        "MWI": ("Africa/Blantyre", _EN),
        "NAM": ("Africa/Windhoek", _EN),
        "NER": ("Africa/Niamey", _FR),
        "NGA": ("Africa/Lagos", _EN),
        "RWA": ("Africa/Kigali", _EN),
        "SDN": ("Africa/Khartoum", _AR),
        "SEN": ("Africa/Dakar", _FR),
        "SLE": ("Africa/Freetown", _EN),
        "SOM": ("Africa/Mogadishu", _EN),
        "SSD": ("Africa/Juba", _EN),
        "STP": ("Africa/Sao_Tome", _FR),
        "SWZ": ("Africa/Mbabane", _EN),
        "SYC": ("Indian/Mahe", _EN),
        "TCD": ("Africa/Ndjamena", _FR),
        "TGO": ("Africa/Lome", _FR),
        "TZA": ("Africa/Dar_es_Salaam", _EN),
        "UGA": ("Africa/Kampala", _EN),
        "ZAF": ("Africa/Johannesburg", _EN),
        "ZMB": ("Africa/Lusaka", _EN),
        "ZWE": ("Africa/Harare", _EN),
    },
    Region.AMERICAS: {
        "ABW": ("America/Aruba", _EN),
        "ARG": ("America/Argentina/Buenos_Aires", _ES),
        "ATG": ("America/Antigua", _EN),
        "BHS": ("America/Nassau", _EN),
        "BLZ": ("America/Belize", _EN),
        "BOL": ("America/La_Paz", _ES),
        "BRA": ("America/Sao_Paulo", _ES),
        "BRB": ("America/Barbados", _EN),
        "CAN": ("America/Toronto", _EN),
        "CHL": ("America/Santiago", _ES),
        "COL": ("America/Bogota", _ES),
        "CRI": ("America/Costa_Rica", _ES),
        "CUB": ("America/Havana", _ES),
        "CUW": ("America/Curacao", _EN),
        "DMA": ("America/Dominica", _EN),
        "DOM": ("America/Santo_Domingo", _ES),
        "ECU": ("America/Guayaquil", _ES),
        "GRD": ("America/Grenada", _EN),
        "GTM": ("America/Guatemala", _ES),
        "GUY": ("America/Guyana", _EN),
        "HND": ("America/Tegucigalpa", _ES),
        "HTI": ("America/Port-au-Prince", _FR),
        "JAM": ("America/Jamaica", _EN),
        "KNA": ("America/St_Kitts", _EN),
        "LCA": ("America/St_Lucia", _EN),
        "MEX": ("America/Mexico_City", _ES),
        "NIC": ("America/Managua", _ES),
        "PAN": ("America/Panama", _ES),
        "PER": ("America/Lima", _ES),
        "PRY": ("America/Asuncion", _ES),
        "SLV": ("America/El_Salvador", _ES),
        "SUR": ("America/Paramaribo", _EN),
        "SXM": ("America/Lower_Princes", _EN),
        "TTO": ("America/Port_of_Spain", _EN),
        "URY": ("America/Montevideo", _ES),
        "USA": ("America/New_York", _EN),
        "VCT": ("America/St_Vincent", _EN),
        "VEN": ("America/Caracas", _ES),
    },
    Region.ASIA_SOUTH_PACIFIC: {
        "AFG": ("Asia/Kabul", _EN),
        "AUS": ("Australia/Sydney", _EN),
        "BGD": ("Asia/Dhaka", _EN),
        "BRN": ("Asia/Brunei", _EN),
        "BTN": ("Asia/Thimphu", _EN),
        "CHN": ("Asia/Shanghai", _EN),
        "FJI": ("Pacific/Fiji", _EN),
        "FSM": ("Pacific/Pohnpei", _EN),
        "IDN": ("Asia/Jakarta", _EN),
        "IND": ("Asia/Kolkata", _EN),
        "IRN": ("Asia/Tehran", _EN),
        "JPN": ("Asia/Tokyo", _EN),
        "KAZ": ("Asia/Almaty", _EN),
        "KGZ": ("Asia/Bishkek", _EN),
        "KHM": ("Asia/Phnom_Penh", _EN),
        "KIR": ("Pacific/Tarawa", _EN),
        "KOR": ("Asia/Seoul", _EN),
        "LAO": ("Asia/Vientiane", _EN),
        "LKA": ("Asia/Colombo", _EN),
        "MDV": ("Indian/Maldives", _EN),
        "MHL": ("Pacific/Majuro", _EN),
        "MMR": ("Asia/Yangon", _EN),
        "MNG": ("Asia/Ulaanbaatar", _EN),
        "MYS": ("Asia/Kuala_Lumpur", _EN),
        "NPL": ("Asia/Kathmandu", _EN),
        "NRU": ("Pacific/Nauru", _EN),
        "NZL": ("Pacific/Auckland", _EN),
        "PAK": ("Asia/Karachi", _EN),
        "PHL": ("Asia/Manila", _EN),
        "PLW": ("Pacific/Palau", _EN),
        "PNG": ("Pacific/Port_Moresby", _EN),
        "SGP": ("Asia/Singapore", _EN),
        "SLB": ("Pacific/Guadalcanal", _EN),
        "THA": ("Asia/Bangkok", _EN),
        "TJK": ("Asia/Dushanbe", _EN),
        "TKM": ("Asia/Ashgabat", _EN),
        "TLS": ("Asia/Dili", _EN),
        "TON": ("Pacific/Tongatapu", _EN),
        "UZB": ("Asia/Tashkent", _EN),
        "VNM": ("Asia/Ho_Chi_Minh", _EN),
        "VUT": ("Pacific/Efate", _EN),
        "WSM": ("Pacific/Apia", _EN),
    },
    Region.EUROPE: {
        "ALB": ("Europe/Tirane", _EN),
        "AND": ("Europe/Andorra", _ES),
        "ARM": ("Asia/Yerevan", _EN),
        "AUT": ("Europe/Vienna", _EN),
        "AZE": ("Asia/Baku", _EN),
        "BEL": ("Europe/Brussels", _FR),
        "BGR": ("Europe/Sofia", _EN),
        "BIH": ("Europe/Sarajevo", _EN),
        "BLR": ("Europe/Minsk", _EN),
        "CHE": ("Europe/Zurich", _FR),
        "CYP": ("Asia/Nicosia", _EN),
        "CZE": ("Europe/Prague", _EN),
        "DEU": ("Europe/Berlin", _EN),
        "DNK": ("Europe/Copenhagen", _EN),
        "ESP": ("Europe/Madrid", _ES),
        "EST": ("Europe/Tallinn", _EN),
        "FIN": ("Europe/Helsinki", _EN),
        "FRA": ("Europe/Paris", _FR),
        "GBR": ("Europe/London", _EN),
        "GEO": ("Asia/Tbilisi", _EN),
        "GRC": ("Europe/Athens", _EN),
        "HRV": ("Europe/Zagreb", _EN),
        "HUN": ("Europe/Budapest", _EN),
        "IRL": ("Europe/Dublin", _EN),
        "ISL": ("Atlantic/Reykjavik", _EN),
        "ISR": ("Asia/Jerusalem", _EN),
        "ITA": ("Europe/Rome", _EN),
        "LIE": ("Europe/Vaduz", _EN),
        "LTU": ("Europe/Vilnius", _EN),
        "LUX": ("Europe/Luxembourg", _FR),
        "LVA": ("Europe/Riga", _EN),
        "MCO": ("Europe/Monaco", _FR),
        "MDA": ("Europe/Chisinau", _EN),
        "MKD": ("Europe/Skopje", _EN),
        "MLT": ("Europe/Malta", _EN),
        "MNE": ("Europe/Podgorica", _EN),
        "NLD": ("Europe/Amsterdam", _EN),
        "NOR": ("Europe/Oslo", _EN),
        "POL": ("Europe/Warsaw", _EN),
        "PRT": ("Europe/Lisbon", _EN),
        "ROU": ("Europe/Bucharest", _EN),
        "RUS": ("Europe/Moscow", _EN),
        "SMR": ("Europe/San_Marino", _EN),
        "SRB": ("Europe/Belgrade", _EN),
        "SVK": ("Europe/Bratislava", _EN),
        "SVN": ("Europe/Ljubljana", _EN),
        "SWE": ("Europe/Stockholm", _EN),
        "TUR": ("Europe/Istanbul", _EN),
        "UKR": ("Europe/Kyiv", _EN),
        "VAT": ("Europe/Vatican", _FR),
    },
    Region.MIDDLE_EAST_NORTH_AFRICA: {
        "ARE": ("Asia/Dubai", _AR),
        "BHR": ("Asia/Bahrain", _AR),
        "DZA": ("Africa/Algiers", _AR),
        "EGY": ("Africa/Cairo", _AR),
        "IRQ": ("Asia/Baghdad", _AR),
        "JOR": ("Asia/Amman", _AR),
        "KWT": ("Asia/Kuwait", _AR),
        "LBN": ("Asia/Beirut", _AR),
        "LBY": ("Africa/Tripoli", _AR),
        "MAR": ("Africa/Casablanca", _AR),
        "OMN": ("Asia/Muscat", _AR),
        "PSE": ("Asia/Hebron", _AR),
        "QAT": ("Asia/Qatar", _AR),
        "SAU": ("Asia/Riyadh", _AR),
        "SYR": ("Asia/Damascus", _AR),
        "TUN": ("Africa/Tunis", _AR),
        "YEM": ("Asia/Aden", _AR),
    },
}

_HUBS: tuple[Hub, ...] = (
    Hub(site="lyon", city="Lyon", timezone="Europe/Paris", languages=(_FR, _EN, _AR, _ES)),
    Hub(
        site="buenos-aires",
        city="Buenos Aires",
        timezone="America/Argentina/Buenos_Aires",
        languages=(_ES, _EN, _AR, _FR),
    ),
    Hub(
        site="singapore",
        city="Singapore",
        timezone="Asia/Singapore",
        languages=(_EN, _AR, _ES, _FR),
    ),
)


@cache
def default_registry() -> MemberRegistry:
    """The 196 member countries and the three hubs; built once, then shared."""
    members = [
        Member(iso3=iso3, name=_name_of(iso3), region=region, timezone=zone, language=language)
        for region, rows in _TABLE.items()
        for iso3, (zone, language) in rows.items()
    ]
    if len(members) != MEMBER_COUNT:
        raise AssertionError(f"the registry table lists {len(members)} members, not 196")
    return MemberRegistry(members, _HUBS)
