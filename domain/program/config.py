"""The loyalty program, read from a versioned TOML file and validated at load.

Errors name the file, the key and what is wrong, e.g.
`program.toml: tiers[1].threshold: must be greater than the previous tier's (500)`.
"""

from __future__ import annotations

import itertools
import tomllib
from datetime import date, time
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SUPPORTED_VERSIONS = (1,)

# ISO 4217 codes we accept, with their minor units (decimal places of the currency).
CURRENCY_MINOR_UNITS: dict[str, int] = {
    "AED": 2,
    "ARS": 2,
    "AUD": 2,
    "BGN": 2,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "COP": 2,
    "CZK": 2,
    "DKK": 2,
    "EGP": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "ISK": 0,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MAD": 2,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "PEN": 2,
    "PHP": 2,
    "PLN": 2,
    "RON": 2,
    "RSD": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TRY": 2,
    "TWD": 2,
    "UAH": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}


class ProgramError(Exception):
    """The program file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rounding(StrEnum):
    DOWN = "down"
    NEAREST = "nearest"
    UP = "up"


class ExpiryPolicy(StrEnum):
    ROLLING = "rolling"  # N months after the credit
    END_OF_QUARTER = "end_of_quarter"  # end of the quarter after N months
    END_OF_YEAR = "end_of_year"  # end of the calendar year after N months
    NEVER = "never"


class TierWindow(StrEnum):
    ROLLING_12_MONTHS = "rolling_12_months"
    CALENDAR_YEAR = "calendar_year"


class ProgramInfo(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    currency: str
    # The brand's time zone: what "today" means for promotions and daily caps.
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone") from None
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_MINOR_UNITS:
            raise ValueError(f"'{value}' is not an ISO 4217 currency code we support")
        return value


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Promotion(_Strict):
    """A multiplier on purchase points for some days: double-points Tuesdays,
    a member day each month, a launch week. Promotions do not stack: the best
    multiplier of those that apply is used (tier multipliers do stack)."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    multiplier: Annotated[Decimal, Field(gt=1, le=10)]
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []
    days_of_month: list[Annotated[int, Field(ge=1, le=31)]] = []
    starts: date | None = None
    ends: date | None = None  # inclusive

    @model_validator(mode="after")
    def _dates_in_order(self) -> Promotion:
        if self.starts and self.ends and self.ends < self.starts:
            raise ValueError("ends: must not be before starts")
        return self

    def applies_on(self, day: date) -> bool:
        if (self.starts and day < self.starts) or (self.ends and day > self.ends):
            return False
        if self.weekdays and WEEKDAYS[day.weekday()] not in self.weekdays:
            return False
        return not (self.days_of_month and day.day not in self.days_of_month)


class Earning(_Strict):
    # Points for each whole unit of the program currency spent.
    points_per_unit: Annotated[Decimal, Field(gt=0, le=1000)]
    # Applied once, to base x tier multiplier x promotion multiplier.
    rounding: Rounding = Rounding.DOWN
    max_points_per_purchase: Annotated[int, Field(gt=0)] | None = None
    max_points_per_day: Annotated[int, Field(gt=0)] | None = None
    promotions: list[Promotion] = []


class Bonuses(_Strict):
    welcome: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    birthday: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    # Both sides of a referral, once the new member's first purchase lands.
    referrer: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    referee: Annotated[int, Field(ge=0, le=1_000_000)] = 0


ACTIVITIES = ("survey", "social_share", "check_in", "profile_completed")


class Activity(_Strict):
    points: Annotated[int, Field(gt=0, le=1_000_000)]
    per_day: Annotated[int, Field(ge=1, le=100)] = 1
    lifetime: Annotated[int, Field(ge=1, le=100_000)] | None = None


class QuietHours(_Strict):
    start: time = time(21, 0)
    end: time = time(9, 0)


class Notifications(_Strict):
    """Push policy: when members may be nudged, how often, and what wins."""

    quiet_hours: QuietHours = QuietHours()
    max_per_day: Annotated[int, Field(ge=0, le=50)] = 2
    max_per_week: Annotated[int, Field(ge=0, le=200)] = 5
    # When several compete, the earlier kind is sent first and wins the caps.
    priority: list[Literal["EXPIRY", "BIRTHDAY", "LOCATION", "CAMPAIGN"]] = [
        "EXPIRY",
        "BIRTHDAY",
        "LOCATION",
        "CAMPAIGN",
    ]
    expiry_warning_days: list[Annotated[int, Field(ge=1, le=365)]] = [30, 7]
    # A location nudge at most once per store per this many hours, and this many a day.
    location_cooldown_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 24
    location_max_per_day: Annotated[int, Field(ge=0, le=20)] = 1
    birthday_hour: Annotated[int, Field(ge=0, le=23)] = 9

    @field_validator("priority")
    @classmethod
    def _all_kinds_once(cls, value: list[str]) -> list[str]:
        if sorted(value) != sorted(["EXPIRY", "BIRTHDAY", "LOCATION", "CAMPAIGN"]):
            raise ValueError("list each of EXPIRY, BIRTHDAY, LOCATION and CAMPAIGN once")
        return value


class StoreRule(_Strict):
    key: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
    name: Annotated[str, Field(min_length=1, max_length=80)]
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    radius_meters: Annotated[int, Field(ge=10, le=50_000)] = 150
    # What a member walking by is told; no message, no nudge.
    message: Annotated[str, Field(max_length=300)] | None = None


class Cashback(_Strict):
    """A share of each purchase back as money in a CASHBACK wallet (never expires)."""

    enabled: bool = False
    percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(0)


class Expiry(_Strict):
    policy: ExpiryPolicy
    months: Annotated[int, Field(ge=1, le=120)] | None = None

    @model_validator(mode="after")
    def _months_when_needed(self) -> Expiry:
        if self.policy is ExpiryPolicy.NEVER and self.months is not None:
            raise ValueError("months: not allowed when policy is 'never'")
        if self.policy is not ExpiryPolicy.NEVER and self.months is None:
            raise ValueError(f"months: required when policy is '{self.policy}'")
        return self


class Pending(_Strict):
    # Points from a purchase stay pending this many days (the return window).
    days: Annotated[int, Field(ge=0, le=365)] = 0


class Tier(_Strict):
    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    name: Annotated[str, Field(min_length=1, max_length=40)]
    rank: Annotated[int, Field(ge=0, le=100)]
    threshold: Annotated[int, Field(ge=0)]
    # Purchase points are multiplied by this while the member is in the tier.
    multiplier: Annotated[Decimal, Field(ge=1, le=10)] = Decimal(1)


class Tiers(_Strict):
    window: TierWindow = TierWindow.ROLLING_12_MONTHS


class Program(_Strict):
    version: int
    program: ProgramInfo
    earning: Earning
    expiry: Expiry
    pending: Pending = Pending()
    bonuses: Bonuses = Bonuses()
    cashback: Cashback = Cashback()
    notifications: Notifications = Notifications()
    stores: list[StoreRule] = []
    # Points for things other than purchases, keyed survey | social_share | check_in | profile_completed.
    activities: dict[Literal["survey", "social_share", "check_in", "profile_completed"], Activity] = {}
    tier_rules: Tiers = Field(default=Tiers(), alias="tier_rules")
    tiers: Annotated[list[Tier], Field(min_length=1)]

    @field_validator("version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value not in SUPPORTED_VERSIONS:
            raise ValueError(f"version {value} is not supported (supported: {SUPPORTED_VERSIONS})")
        return value

    @field_validator("tiers")
    @classmethod
    def _ordered(cls, tiers: list[Tier]) -> list[Tier]:
        if tiers[0].threshold != 0:
            raise ValueError("the first tier must have threshold 0 so every member has a tier")
        for i, (before, tier) in enumerate(itertools.pairwise(tiers), start=1):
            if tier.rank <= before.rank:
                raise ValueError(f"[{i}].rank: must be greater than the previous tier's ({before.rank})")
            if tier.threshold <= before.threshold:
                raise ValueError(f"[{i}].threshold: must be greater than the previous tier's ({before.threshold})")
        keys = [t.key for t in tiers]
        if len(set(keys)) != len(keys):
            raise ValueError("tier keys must be unique")
        return tiers

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.program.timezone)

    @property
    def entry_tier(self) -> Tier:
        return self.tiers[0]

    @property
    def currency(self) -> str:
        return self.program.currency

    @property
    def currency_decimals(self) -> int:
        return CURRENCY_MINOR_UNITS[self.program.currency]

    def tier(self, key: str) -> Tier | None:
        return next((t for t in self.tiers if t.key == key), None)


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse(text: str, source: str) -> Program:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProgramError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Program.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            where = _where(err["loc"])
            # A validator over a list names the item itself: "tiers" + "[1].rank: ..."
            sep = "" if message.startswith("[") else ": "
            problems.append(f"{source}: {where}{sep}{message}")
        raise ProgramError("\n".join(problems)) from None


def load(path: Path | None = None) -> Program:
    """Load the program at `path`, or the demo program that ships when None."""
    if path is None:
        text = resources.files("domain.program").joinpath("demo.toml").read_text()
        return parse(text, "demo.toml")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ProgramError(f"{path}: cannot read the program file: {exc.strerror}") from None
    return parse(text, str(path))
