"""The console's languages: Simplified Chinese and English, from Babel catalogues.

Messages live in gettext catalogues under `riskwatch/console/locale/`
(`messages.pot`, extracted by `pybabel extract -F riskwatch/console/babel.cfg`;
one `messages.po` per locale). The `.po` files are compiled in memory when
the console starts, so there is no build step to forget; `pybabel compile`
works too and is not needed. English is the source language: its catalogue
is empty and every message shows as written.

Texts that come from the rule files (indicator titles, playbook and plan
titles, step actions, owner roles, tier words) are messages of the same
catalogues: `riskwatch/console/rule_texts.py` lists what the shipped rule
files say, so `pybabel extract` finds them, and a risk officer who edits a
rule text sees it in English until the catalogue has it (docs/console.md).

Dates, numbers and money are formatted for the locale by Babel's CLDR data:
CNY as "¥" with grouping, other currencies by their ISO code.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, negotiate_locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.units import format_unit
from babel.support import NullTranslations, Translations

from riskwatch.console.words import N_
from riskwatch.timeutil import split_duration

# CLDR units for the unit letters of riskwatch.timeutil's durations.
_DURATION_UNITS = {"s": "duration-second", "m": "duration-minute", "h": "duration-hour", "d": "duration-day",
                   "w": "duration-week"}

LOCALE_DIR = Path(__file__).with_name("locale")
# Tag as the browser and <html lang> write it -> Babel's identifier.
LANGUAGES = {"en": "en", "zh-CN": "zh_CN"}
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "rw_lang"


@lru_cache(maxsize=None)
def translations(language: str) -> NullTranslations:
    """The catalogue for a tag of LANGUAGES ("en", "zh-CN"), compiled from its
    .po file once per process. Raises KeyError for another tag; a locale
    without a catalogue file (English) gets the source texts."""
    path = LOCALE_DIR / LANGUAGES[language] / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=LANGUAGES[language])
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The tag a page is shown in: the switch's cookie when it names a known
    language, else the best match of the browser's Accept-Language (any
    `zh`, `zh-CN`, `zh-Hans` → "zh-CN"), else English."""
    if cookie in LANGUAGES:
        return cookie
    wanted = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            wanted.append((quality, tag.strip()))
    wanted.sort(key=lambda pair: -pair[0])
    for _, tag in wanted:
        primary = tag.split("-")[0].lower()
        if primary == "zh":
            return "zh-CN"
        if primary == "en":
            return "en"
    found = negotiate_locale([t for _, t in wanted], list(LANGUAGES), sep="-")
    return found or DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Formatter:
    """Locale-aware formatting for one page: texts through the catalogue,
    instants in the console's time zone, amounts and percentages by CLDR.

    `language` is a LANGUAGES tag; `zone` an IANA zone name (the
    `RISKWATCH_CONSOLE_TIME_ZONE` setting, Asia/Shanghai by default)."""

    language: str
    zone: str = "Asia/Shanghai"

    @property
    def babel_locale(self) -> Locale:
        return Locale.parse(LANGUAGES[self.language])

    def gettext(self, message: str) -> str:
        return translations(self.language).gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return translations(self.language).ngettext(singular, plural, count)

    @property
    def colon(self) -> str:
        """What follows a label before its value: "：" in Chinese (full-width, no
        space), ": " in English."""
        return "：" if self.language.startswith("zh") else ": "

    def aside(self, text: str) -> str:
        """A parenthetical after a text: "（text）" in Chinese, " (text)" in English."""
        return f"（{text}）" if self.language.startswith("zh") else f" ({text})"

    def known(self, message: str | None) -> str:
        """A text from the rule files or the engine, through the catalogue
        (untranslated ones show as written); '' for None."""
        return "" if message is None else self.gettext(str(message))

    def role(self, role: str | None) -> str:
        """An owner role id (`customer_success_manager`) as its name in the page's language."""
        if not role:
            return ""
        english = role.replace("_", " ")
        shown = self.gettext(english)
        return shown[:1].upper() + shown[1:] if self.language == "en" else shown

    def instant(self, value: str | datetime | float | None, form: str = "medium") -> str:
        """An RFC 3339 instant (or aware datetime, or Unix seconds) in the console's zone, '' for None."""
        moment = parse(value)
        if moment is None:
            return ""
        return format_datetime(moment, format=form, tzinfo=ZoneInfo(self.zone), locale=self.babel_locale)

    def duration(self, seconds: float) -> str:
        """A span of time in words of the locale ("3 hours", "3小时"), rounded to the largest unit."""
        return format_timedelta(abs(seconds), threshold=1.1, locale=self.babel_locale)

    def written_duration(self, text: str) -> str:
        """A duration as a rule file writes it ("72h", "7d", "30m") in words
        of the locale, in the unit it was written in ("72 hours", "72小时");
        text that is not such a duration is returned as it is."""
        parts = split_duration(text)
        if parts is None:
            return str(text)
        value = float(parts[0])
        return format_unit(int(value) if value.is_integer() else value, _DURATION_UNITS[parts[1]],
                           length="long", locale=self.babel_locale)

    def money(self, amount, currency: str = "CNY") -> str:
        """An amount in major units: CNY as ¥ with grouping and two decimals,
        another currency by its ISO code ("USD 1,200.00"); '' for None or
        a value that is not a number."""
        number = _decimal(amount)
        if number is None:
            return ""
        text = format_decimal(number, format="#,##0.00", locale=self.babel_locale)
        return f"¥{text}" if currency == "CNY" else f"{currency} {text}"

    def number(self, value, digits: int = 2) -> str:
        number = _decimal(value)
        if number is None:
            return ""
        return format_decimal(number, format="#,##0." + "#" * digits if digits else "#,##0", locale=self.babel_locale)

    def percent(self, ratio) -> str:
        """A ratio 0–1 as a percentage of the locale ("18.2%")."""
        number = _decimal(ratio)
        if number is None:
            return ""
        return format_percent(number, format="#,##0.#%", locale=self.babel_locale)

    def reading(self, text: str | None) -> str:
        """A reading printed by `riskwatch.units` ("30 days 4 h > 30 days") in
        the page's language: its unit words through the catalogue."""
        if not text:
            return ""
        if self.language == "en":
            return text
        return re.sub(r"\b(days?|h|min|s|ms)\b", lambda m: self.gettext(_UNIT_WORDS[m.group(1)]), text)


# The unit words `riskwatch.units` prints, as catalogue messages.
_UNIT_WORDS = {"day": N_("unit:day"), "days": N_("unit:days"), "h": N_("unit:h"), "min": N_("unit:min"),
               "s": N_("unit:s"), "ms": N_("unit:ms")}


def parse(value: str | datetime | float | None) -> datetime | None:
    """An instant from RFC 3339 text, an aware (or UTC) datetime or Unix
    seconds; None for None, '' or text that is not an instant."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # Unix seconds, as the engine keeps time
        return datetime.fromtimestamp(value, timezone.utc)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None
