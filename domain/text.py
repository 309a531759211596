"""Text from outside: what any string may hold, and the stricter rules for names people
read and for email addresses.

- Any text: at most MAX_LENGTH characters, no control characters but tab, line feed and
  carriage return (PostgreSQL refuses NUL; the rest is never text), no lone surrogates
  (they cannot be stored as UTF-8).
- Names (members, rewards, stores): NFC, one line with single spaces, none of Unicode's
  invisible "default ignorable" characters, with the exceptions real names need: a zero
  width joiner or non-joiner between two characters (Persian `مریم‌رضایی`, emoji families
  `👨‍👩‍👧`), variation selectors (`❤️`) and emoji tag characters (subdivision flags). So
  bidi overrides, zero-width spaces, Hangul fillers and soft hyphens are refused. Code
  points unassigned in our Unicode tables pass: they are tomorrow's emoji, not controls.
- Email addresses: NFC, and no control, format, space or default-ignorable character at all.
"""

from __future__ import annotations

import re
import unicodedata

from domain.errors import InvalidInput

# Generous for every value a client sends (the longest, a Firebase ID token, is ~1-2 KB).
MAX_LENGTH = 8192

_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt): drawn as nothing.
_IGNORABLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_INVISIBLE = re.compile(f"[{_IGNORABLE}]")
ZWNJ, ZWJ = "\u200c", "\u200d"
# What names keep of the above: variation selectors and emoji tags belong to the
# character before them; the joiners are checked for a character on both sides.
_KEPT_IN_NAMES = re.compile("[\ufe00-\ufe0f\U000e0020-\U000e007f\U000e0100-\U000e01ef\u200c\u200d]")
_LONE_JOINER = re.compile(r"(?:^|\s)[\u200c\u200d]|[\u200c\u200d](?:$|\s)|[\u200c\u200d]{2}")


def problem(value: str) -> str | None:
    """Why this cannot be text we accept anywhere, or None when it can."""
    if len(value) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    found = _NOT_TEXT.search(value)
    if found:
        return f"contains the control character U+{ord(found.group()):04X}"
    return None


def checked(value: str, field: str) -> str:
    """The value, or INVALID_INPUT naming the field when it is not text."""
    reason = problem(value)
    if reason:
        raise InvalidInput(f"{field} {reason}.", field=field)
    return value


def _hidden_in_name(name: str) -> str | None:
    """The first character of the name that is invisible or a control, if any."""
    for ch in name:
        if _KEPT_IN_NAMES.match(ch):
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") or _INVISIBLE.match(ch):
            return ch
    return ZWJ if _LONE_JOINER.search(name) else None


def name(value: str, field: str, max_length: int = 80, what: str = "A name") -> str:
    """A name people read: NFC, single spaces, 1 to max_length characters, nothing invisible."""
    checked(value, field)
    cleaned = " ".join(unicodedata.normalize("NFC", value).split())
    if not 1 <= len(cleaned) <= max_length:
        raise InvalidInput(f"{what} has 1 to {max_length} characters.", field=field)
    hidden = None if cleaned.isascii() else _hidden_in_name(cleaned)
    if hidden:
        raise InvalidInput(f"{what} cannot contain invisible or control characters (U+{ord(hidden):04X}).", field=field)
    return cleaned


def visible(value: str) -> bool:
    """No control, format, separator or default-ignorable character: what emails need."""
    return not _INVISIBLE.search(value) and not any(unicodedata.category(ch)[0] in "CZ" for ch in value)
