"""The loyalty program, read from a versioned TOML file and validated at load.

Errors name the file, the key and what is wrong, e.g.
`program.toml: tiers[1].threshold: must be greater than the previous tier's (500)`.
"""

from __future__ import annotations

import itertools
import tomllib
import uuid
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


# Each field's description and example are the program file's reference: docs/program.md
# is generated from them (python -m domain.program.reference) and a test keeps it current.


class ProgramInfo(_Strict):
    """Who the program is and what money and day it counts in."""

    name: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="The program's name, as the app shows it.", examples=["Café Aurora Rewards"]
    )
    currency: str = Field(
        description="ISO 4217 code of the money purchases are recorded in; amounts may carry at most its "
        "decimals (2 for EUR, 0 for JPY).",
        examples=["EUR"],
    )
    timezone: str = Field(
        "UTC",
        description='The brand\'s IANA time zone: what "today" means for promotions, daily caps and expiry dates.',
        examples=["Europe/Paris"],
    )
    point_value: Annotated[Decimal, Field(ge=0, le=1000)] = Field(
        Decimal("0.01"),
        description="What one point costs the brand, in the currency: the points liability's value in money "
        "(programKpis) is the points members hold times this. 0.01 with 10 points per euro is 10% back.",
        examples=[Decimal("0.01")],
    )

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
    multiplier of those that apply is used (tier multipliers do stack).
    A day must satisfy every condition given (dates, weekdays, days of the month)."""

    name: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="Shown in the ledger entry's explanation.", examples=["Double points Tuesday"]
    )
    multiplier: Annotated[Decimal, Field(gt=1, le=10)] = Field(
        description="Purchase points are multiplied by this on the days it applies.", examples=[2]
    )
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        [], description="The days of the week it applies on; empty: every day.", examples=[["tue"]]
    )
    days_of_month: list[Annotated[int, Field(ge=1, le=31)]] = Field(
        [], description="The days of the month it applies on; empty: every day.", examples=[[1, 15]]
    )
    starts: date | None = Field(
        None, description="The first day it applies; unset: always did.", examples=[date(2027, 1, 1)]
    )
    ends: date | None = Field(
        None, description="The last day it applies (inclusive); unset: no end.", examples=[date(2027, 3, 31)]
    )

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
    """Points for purchases: amount x points_per_unit x the tier's multiplier x the best
    promotion's, rounded once, then capped per purchase and per day."""

    points_per_unit: Annotated[Decimal, Field(gt=0, le=1000)] = Field(
        description="Points for each unit of the currency spent (fractions count: 4.99 EUR at 10 earns 49.9 "
        "before rounding).",
        examples=[10],
    )
    rounding: Rounding = Field(
        Rounding.DOWN,
        description="How the points are rounded, once, after every multiplier.",
        examples=["down"],
    )
    max_points_per_purchase: Annotated[int, Field(gt=0)] | None = Field(
        None, description="At most this many points for one purchase; unset: no cap.", examples=[5000]
    )
    max_points_per_day: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="At most this many purchase points per member per day (the program's time zone); unset: no cap.",
        examples=[10000],
    )
    promotions: list[Promotion] = Field([], description="Point multipliers for some days, as `[[earning.promotions]]`.")


class Bonuses(_Strict):
    """Points given once, for moments rather than purchases."""

    welcome: Annotated[int, Field(ge=0, le=1_000_000)] = Field(0, description="Points on enrolment.", examples=[100])
    birthday: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        0,
        description="Points on the member's birthday, once a year, with the birthday push "
        "(`notifications.birthday_hour`).",
        examples=[200],
    )
    referrer: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        0,
        description="Points to a member whose referral code a new member enrolled with, once the new "
        "member's first purchase lands.",
        examples=[150],
    )
    referee: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        0, description="Points to the new member who enrolled with a referral code, at the same moment.", examples=[150]
    )


ACTIVITIES = ("survey", "social_share", "check_in", "profile_completed")


class Activity(_Strict):
    """Points for something other than a purchase, recorded with `recordActivity`."""

    points: Annotated[int, Field(gt=0, le=1_000_000)] = Field(description="Points each time it counts.", examples=[50])
    per_day: Annotated[int, Field(ge=1, le=100)] = Field(
        1, description="Times a day it earns points (the program's time zone); more are NOT_ELIGIBLE.", examples=[1]
    )
    lifetime: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="Times it earns points ever; unset: no limit.", examples=[12]
    )


class QuietHours(_Strict):
    """No push between start and end, member-local; a push due then waits for the end.
    The span may cross midnight (21:00 to 09:00); start = end: no quiet hours."""

    start: time = Field(time(21, 0), description="When the quiet hours begin.", examples=[time(21, 0)])
    end: time = Field(time(9, 0), description="When they end, and deferred pushes go out.", examples=[time(9, 0)])


class Notifications(_Strict):
    """Push policy: when members may be nudged, how often, and what wins."""

    quiet_hours: QuietHours = Field(
        QuietHours(),
        description="When pushes wait: `quiet_hours = { start = 21:00:00, end = 09:00:00 }`, or the table below.",
    )
    max_per_day: Annotated[int, Field(ge=0, le=50)] = Field(
        2,
        description="Pushes a member gets per day at most, member-local; more are suppressed (DAILY_CAP).",
        examples=[2],
    )
    max_per_week: Annotated[int, Field(ge=0, le=200)] = Field(
        5, description="Pushes a member gets in any 7 days at most; more are suppressed (WEEKLY_CAP).", examples=[5]
    )
    priority: list[Literal["EXPIRY", "BIRTHDAY", "LOCATION", "CAMPAIGN", "JOURNEY"]] = Field(
        ["EXPIRY", "BIRTHDAY", "LOCATION", "CAMPAIGN"],
        description="When several compete, the earlier kind is sent first and wins the caps; list each kind once "
        "(JOURNEY may be left out: it then comes just before CAMPAIGN).",
        examples=[["EXPIRY", "BIRTHDAY", "LOCATION", "CAMPAIGN"]],
    )
    expiry_warning_days: list[Annotated[int, Field(ge=1, le=365)]] = Field(
        [30, 7],
        description="Warn this many days before points expire, once per warning (none if they were spent).",
        examples=[[30, 7]],
    )
    location_cooldown_hours: Annotated[int, Field(ge=1, le=24 * 30)] = Field(
        24, description="A location nudge for one store at most once in this many hours.", examples=[24]
    )
    location_max_per_day: Annotated[int, Field(ge=0, le=20)] = Field(
        1, description="Location nudges a member gets per day at most, whatever the store.", examples=[1]
    )
    birthday_hour: Annotated[int, Field(ge=0, le=23)] = Field(
        9,
        description="The hour (0-23, member-local) at which the hourly birthdays job greets members "
        "and gives the bonus.",
        examples=[9],
    )

    @field_validator("priority")
    @classmethod
    def _all_kinds_once(cls, value: list[str]) -> list[str]:
        if sorted(k for k in value if k != "JOURNEY") != sorted(["EXPIRY", "BIRTHDAY", "LOCATION", "CAMPAIGN"]):
            raise ValueError("list each of EXPIRY, BIRTHDAY, LOCATION and CAMPAIGN once")
        if value.count("JOURNEY") > 1:
            raise ValueError("list JOURNEY once at most")
        if "JOURNEY" not in value:  # older files: journeys (a welcome, a win-back) before campaigns
            value = [*value[: value.index("CAMPAIGN")], "JOURNEY", *value[value.index("CAMPAIGN") :]]
        return value


class StoreRule(_Strict):
    """A store, for location nudges: `reportLocation` answers the stores within reach."""

    key: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")] = Field(
        description="The store's stable id: lowercase letters, digits, - and _, up to 40.", examples=["paris-marais"]
    )
    name: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="As members see it.", examples=["Café Aurora Marais"]
    )
    latitude: Annotated[float, Field(ge=-90, le=90)] = Field(description="In degrees (WGS 84).", examples=[48.859])
    longitude: Annotated[float, Field(ge=-180, le=180)] = Field(description="In degrees (WGS 84).", examples=[2.362])
    radius_meters: Annotated[int, Field(ge=10, le=50_000)] = Field(
        150, description="How near counts as walking by.", examples=[150]
    )
    message: Annotated[str, Field(max_length=300)] | None = Field(
        None,
        description="What a member walking by is told; unset: no nudge for this store.",
        examples=["You're next door: your usual is 10% off until 11:00."],
    )


class Cashback(_Strict):
    """A share of each purchase back as money in a CASHBACK wallet (never expires)."""

    enabled: bool = Field(False, description="Whether purchases earn cashback.", examples=[True])
    percent: Annotated[Decimal, Field(ge=0, le=100)] = Field(
        Decimal(0), description="The share of the amount, rounded down to the currency's decimals.", examples=[2.5]
    )


class Expiry(_Strict):
    """When earned points expire: at midnight in the program's time zone, so that
    everything earned on one day expires together. Spending takes the points that
    expire first."""

    policy: ExpiryPolicy = Field(
        description="`rolling`: the day after the same date `months` later; `end_of_quarter` / `end_of_year`: "
        "the end of the quarter / year that date falls in; `never`.",
        examples=["rolling"],
    )
    months: Annotated[int, Field(ge=1, le=120)] | None = Field(
        None, description="Required unless the policy is `never` (and not allowed then).", examples=[12]
    )
    extend_on_activity: bool = Field(
        False,
        description="An inactivity policy: each purchase or activity that earns points (check-in, survey…) "
        "moves the expiry of all the member's open points to the date points earned at that moment get, "
        "so points live `months` after the member's last activity. `false`: each credit keeps its own "
        "date. Not allowed with `never`.",
        examples=[True],
    )

    @model_validator(mode="after")
    def _months_when_needed(self) -> Expiry:
        if self.policy is ExpiryPolicy.NEVER and self.extend_on_activity:
            raise ValueError("extend_on_activity: not allowed when policy is 'never' (nothing expires)")
        if self.policy is ExpiryPolicy.NEVER and self.months is not None:
            raise ValueError("months: not allowed when policy is 'never'")
        if self.policy is not ExpiryPolicy.NEVER and self.months is None:
            raise ValueError(f"months: required when policy is '{self.policy}'")
        return self


class Pending(_Strict):
    """Purchase points wait out the return window before they can be spent."""

    days: Annotated[int, Field(ge=0, le=365)] = Field(
        0, description="Days purchase points stay pending; 0: spendable at once.", examples=[14]
    )


class Tier(_Strict):
    """One step of the tier ladder, as `[[tiers]]`, lowest first."""

    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = Field(
        description="The tier's stable id: lowercase letters, digits and _, up to 32; unique.", examples=["bronze"]
    )
    name: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        description="As members see it.", examples=["Bronze"]
    )
    rank: Annotated[int, Field(ge=0, le=100)] = Field(
        description="Order of the ladder; each tier's greater than the one before.", examples=[0]
    )
    threshold: Annotated[int, Field(ge=0)] = Field(
        description="Qualifying points (earned within the tier window) it takes; the first tier's is 0, each "
        "next one's greater.",
        examples=[0],
    )
    multiplier: Annotated[Decimal, Field(ge=1, le=10)] = Field(
        Decimal(1),
        description="Purchase points are multiplied by this while the member is in the tier.",
        examples=[1],
    )


class Tiers(_Strict):
    """How qualifying points are counted for tiers."""

    window: TierWindow = Field(
        TierWindow.ROLLING_12_MONTHS,
        description="`rolling_12_months`: the last 365 days; `calendar_year`: since 1 January, in the program's "
        "time zone.",
        examples=["calendar_year"],
    )


class Segments(_Strict):
    """Thresholds of the four segments that always exist (see the README for their
    definitions). A member is in at most one of them: `new`, else `at_risk`, else
    `high_value`, else `occasional`."""

    new_days: Annotated[int, Field(ge=1, le=365)] = Field(
        30, description="`new`: joined less than this many days ago, with at most one purchase.", examples=[30]
    )
    window_days: Annotated[int, Field(ge=1, le=730)] = Field(
        90,
        description="The window (days, up to now) over which `high_value` and `occasional` count spend and purchases.",
        examples=[90],
    )
    high_value_spend: Annotated[Decimal, Field(ge=0)] = Field(
        Decimal(200),
        description="`high_value`: at least this much spent (net of refunds, program currency) in the window...",
        examples=[200],
    )
    high_value_purchases: Annotated[int, Field(ge=1, le=10_000)] = Field(
        6,
        description="...and at least this many purchases in the window (or the member holds the top tier).",
        examples=[6],
    )
    at_risk_purchases: Annotated[int, Field(ge=1, le=10_000)] = Field(
        3, description="`at_risk`: a regular, with at least this many purchases ever...", examples=[3]
    )
    at_risk_days: Annotated[int, Field(ge=1, le=730)] = Field(
        45, description="...whose last purchase is at least this many days old.", examples=[45]
    )


class JourneyTrigger(StrEnum):
    ENROLLED = "enrolled"
    SEGMENT_ENTERED = "segment_entered"
    TIER_UPGRADED = "tier_upgraded"
    PURCHASE_COUNT = "purchase_count"
    ANNIVERSARY = "anniversary"


class Journey(_Strict):
    """An automated message or reward: a trigger, an optional delay, a condition, and what
    the member gets. It fires once per member per occurrence: enrolment once, each entry
    into the segment (at most once per `repeat_after_days`), each tier reached once, the
    milestone once, each anniversary once."""

    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = Field(
        description="Names the journey for good: the record of who got it is kept under this key.",
        examples=["welcome"],
    )
    trigger: JourneyTrigger = Field(
        description="`enrolled`, `segment_entered` (with `segment`), `tier_upgraded`, `purchase_count` (with "
        "`purchases`), `anniversary` (of joining).",
        examples=["segment_entered"],
    )
    segment: str | None = Field(
        None, description="`segment_entered`: the segment's key (other triggers ignore it).", examples=["at_risk"]
    )
    purchases: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="`purchase_count`: fires at this purchase (counting those not fully refunded).", examples=[10]
    )
    repeat_after_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        90,
        description="`segment_entered`: a new entry fires again only this many days after the last time it fired.",
        examples=[90],
    )
    delay_hours: Annotated[int, Field(ge=0, le=24 * 366)] = Field(
        0, description="Hours after the trigger before it fires (the condition is checked then).", examples=[24]
    )
    only_tiers: list[str] = Field(
        [], description="Condition: fires only for members in one of these tiers then (empty: everyone).",
        examples=[["bronze"]],
    )  # fmt: skip
    still_in_segment: bool = Field(
        True, description="`segment_entered`: fires only if the member is still in the segment then.", examples=[True]
    )
    title: Annotated[str, Field(min_length=1, max_length=120)] | None = Field(
        None, description="The push's title (with `body`); `{tier}` is replaced by the tier's name.",
        examples=["We miss you"],
    )  # fmt: skip
    body: Annotated[str, Field(min_length=1, max_length=500)] | None = Field(
        None, description="The push's text.", examples=["Your next coffee is on us this week."]
    )
    deep_link: Annotated[str, Field(min_length=1, max_length=500)] | None = Field(
        None, description="Where the app opens.", examples=["loyalty://offers"]
    )
    points: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        0, description="Bonus points credited when it fires (0: none).", examples=[100]
    )
    offer_id: str | None = Field(
        None, description="An offer (its id) activated for the member when it fires.",
        examples=["6f1c2b9e-3d1a-4c55-9a43-0b7c6d2f1e88"],
    )  # fmt: skip

    @model_validator(mode="after")
    def _complete(self) -> Journey:
        if (self.title is None) != (self.body is None):
            raise ValueError("give both title and body, or neither")
        if self.title is None and not self.points and self.offer_id is None:
            raise ValueError("a journey sends a message (title and body), points or an offer")
        if self.trigger == JourneyTrigger.SEGMENT_ENTERED and self.segment is None:
            raise ValueError("the segment_entered trigger needs `segment`")
        if self.trigger == JourneyTrigger.PURCHASE_COUNT and self.purchases is None:
            raise ValueError("the purchase_count trigger needs `purchases`")
        if self.offer_id is not None:
            try:
                uuid.UUID(self.offer_id)
            except ValueError:
                raise ValueError("offer_id: not an offer id (a UUID)") from None
        return self


class Program(_Strict):
    """The whole file. Unknown keys are refused."""

    version: int = Field(description="The format of this file: 1.", examples=[1])
    program: ProgramInfo = Field(description="Name, currency and time zone.")
    earning: Earning = Field(description="Points for purchases.")
    expiry: Expiry = Field(description="When points expire.")
    pending: Pending = Field(Pending(), description="The return window.")
    bonuses: Bonuses = Field(Bonuses(), description="Welcome, birthday and referral points.")
    cashback: Cashback = Field(Cashback(), description="Money back into a CASHBACK wallet.")
    notifications: Notifications = Field(Notifications(), description="The push policy.")
    stores: list[StoreRule] = Field([], description="Stores for location nudges, as `[[stores]]`.")
    activities: dict[Literal["survey", "social_share", "check_in", "profile_completed"], Activity] = Field(
        {},
        description="Points for things other than purchases, keyed survey, social_share, check_in or "
        "profile_completed: `[activities]` with `survey = { points = 50, per_day = 1 }`. Unlisted: not rewarded.",
    )
    segments: Segments = Field(Segments(), description="Thresholds of the built-in segments.")
    tier_rules: Tiers = Field(Tiers(), description="How tiers qualify.")
    tiers: Annotated[list[Tier], Field(min_length=1)] = Field(description="The tier ladder, at least one.")
    journeys: list[Journey] = Field(
        [], description="Automated messages and rewards, as `[[journeys]]`: welcome, win-back, milestones."
    )

    @model_validator(mode="after")
    def _journeys_fit(self) -> Program:
        keys = [j.key for j in self.journeys]
        if len(set(keys)) != len(keys):
            raise ValueError("journeys: keys must be unique")
        tiers = {t.key for t in self.tiers}
        for i, j in enumerate(self.journeys):
            unknown = sorted(set(j.only_tiers) - tiers)
            if unknown:
                raise ValueError(f"journeys[{i}].only_tiers: no tier {unknown[0]!r}")
        return self

    def journey(self, key: str) -> Journey | None:
        return next((j for j in self.journeys if j.key == key), None)

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

    @property
    def top_tier(self) -> Tier:
        return self.tiers[-1]


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
