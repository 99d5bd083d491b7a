"""Replace personal data and secrets in free text with typed placeholders, before text is kept anywhere.

Kinds (each one switchable, `KINDS`), applied in this order so that a longer match is never cut by a
shorter one (an IBAN's digits are not a card, an address's digits are not a phone number):

  secret  API-key-like tokens: `sk-...`/`pk-...`/`rk-...`, `Bearer <token>`, GitHub/Slack/AWS key
          shapes, JWTs, and long (32+) hex or base64-like runs that mix letters and digits  -> [SECRET]
  email   name@domain.tld                                                                    -> [EMAIL]
  iban    two letters, two check digits, 11-30 letters/digits, accepted only when the ISO 13616
          mod-97 check holds                                                                 -> [IBAN]
  card    13-19 digits (spaces or dashes between), accepted only when the Luhn check holds    -> [CARD]
  ip      IPv4 and IPv6 addresses, accepted only when `ipaddress` parses them                 -> [IP]
  phone   +country numbers, (area) numbers, 10-15 digit numbers in groups, and 3-4 local numbers;
          dates, year ranges, decimals and version numbers are not phone numbers              -> [PHONE]

Why regexes and not a library: Presidio (presidio-analyzer) needs spaCy and a language model that is
downloaded apart from the package registry, far too heavy for a serving install without torch;
scrubadub has had no release since 2023 and pulls in scikit-learn and textblob. The validators here
(Luhn, IBAN mod-97, `ipaddress`) are what those libraries use for these kinds too; names and street
addresses, which need NER, are not detected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable

KINDS = ("secret", "email", "iban", "card", "ip", "phone")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS} | {"ip": "[IP]"}

_SECRET = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"                      # OpenAI-style keys (sk-proj-..., sk-ant-...)
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"                  # an Authorization header's value
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"                          # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"                        # Slack tokens
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"                         # AWS access key ids
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWTs
    r"|(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_-])")  # long tokens (checked below)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d-]|\.\d)")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])")
_PHONE = re.compile(r"(?<![\w.+/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,5}){1,4}(?![\w/]|[.-]\d)")
_DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")
_LOCAL = re.compile(r"^\d{3}-\d{4}$")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    iban = text.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _secret(m: re.Match) -> str | None:
    token = m.group(0)
    if re.match(r"(?:sk|pk|rk)-|(?i:bearer)\s|gh[pousr]_|xox|AKIA|ASIA|eyJ", token) or _looks_like_token(token):
        return PLACEHOLDERS["secret"]
    return None


def _looks_like_token(token: str) -> bool:
    """A long run is a token (a hex digest, a base64 key) when some stretch of 16+ characters between
    `-`, `_` or `/` mixes letters and at least 2 digits: not a long word, a snake_case name or a path."""
    if token.startswith("/"):
        return False
    for part in re.split(r"[-_/]", token.rstrip("=")):
        if len(part) >= 16 and sum(c.isdigit() for c in part) >= 2 and sum(c.isalpha() for c in part) >= 2:
            return True
    return False


def _card(m: re.Match) -> str | None:
    digits = re.sub(r"\D", "", m.group(0))
    return PLACEHOLDERS["card"] if 13 <= len(digits) <= 19 and luhn_ok(digits) else None


def _iban(m: re.Match) -> str | None:
    return PLACEHOLDERS["iban"] if iban_ok(m.group(0)) else None


def _ipv4(m: re.Match) -> str | None:
    try:
        ipaddress.IPv4Address(m.group(0))
    except ValueError:
        return None
    return PLACEHOLDERS["ip"]


def _ipv6(m: re.Match) -> str | None:
    text = m.group(0)
    if sum(c in "0123456789abcdefABCDEF" for c in text) < 4:  # `a::b` in code is not an address
        return None
    try:
        ipaddress.IPv6Address(text.split("%")[0])
    except ValueError:
        return None
    return PLACEHOLDERS["ip"]


def _phone(m: re.Match) -> str | None:
    text = m.group(0)
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or _DATE.match(text):
        return None
    if text.startswith("+") or "(" in text:
        return PLACEHOLDERS["phone"]
    if _LOCAL.match(text):
        return PLACEHOLDERS["phone"]
    groups = re.split(r"[ .-]", text)
    if len(groups) >= 3 and len(digits) >= 10 and all(len(g) >= 2 for g in groups):
        return PLACEHOLDERS["phone"]  # 555 123 4567, 020-7946-0958; not 1.2.3 nor 2019-2024
    return None


_RULES: dict[str, list[tuple[re.Pattern, Callable[[re.Match], str | None]]]] = {
    "secret": [(_SECRET, _secret)],
    "email": [(_EMAIL, lambda m: PLACEHOLDERS["email"])],
    "iban": [(_IBAN, _iban)],
    "card": [(_CARD, _card)],
    "ip": [(_IPV4, _ipv4), (_IPV6, _ipv6)],
    "phone": [(_PHONE, _phone)],
}


class Redactor:
    """`redact(text)` with the chosen kinds (default: all), in the order of `KINDS`."""

    def __init__(self, kinds: Iterable[str] = KINDS):
        chosen = set(kinds)
        unknown = chosen - set(KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.kinds = [k for k in KINDS if k in chosen]
        self._rules = [rule for kind in self.kinds for rule in _RULES[kind]]

    def redact(self, text: str) -> str:
        if not text:
            return text
        for pattern, check in self._rules:
            text = pattern.sub(lambda m, check=check: check(m) or m.group(0), text)
        return text
