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
  address a house number and a street (`221B Baker Street`, `12 rue de la Paix`, `Hauptstraße 5`,
          `Via Roma 10`) with its flat or suite, a P.O. box, a UK postcode, a US `City, ST 12345`
                                                                                             -> [ADDRESS]
  phone   +country numbers, (area) numbers, 10-15 digit numbers in groups, and 3-4 local numbers;
          dates, year ranges, decimals and version numbers are not phone numbers              -> [PHONE]
  name    people's names, from a gazetteer (tandem/common/names/, the given names and surnames of
          Faker's person providers for ten Western locales) and cues: a title (`Dr.`, `Mrs`) or
          `my name is`/`call me`/a letter's sign-off followed by capitalised words; `Hi`/`Dear`/`I'm`
          followed by a given name; a given name followed by a surname or by another capitalised
          word; a given name alone inside a sentence, unless it is also a common word or place
          (`June`, `Grace`, `Ruby`, `Victoria`...)                                            -> [NAME]

Why regexes and not a library: Presidio (presidio-analyzer) needs spaCy and a language model that is
downloaded apart from the package registry, far too heavy for a serving install without torch;
scrubadub has had no release since 2023 and pulls in scikit-learn and textblob. The validators here
(Luhn, IBAN mod-97, `ipaddress`) are what those libraries use for these kinds too. Names and
addresses are where an NER model would do better: the gazetteer and street patterns here miss a name
that is in no list and standing alone at the start of a sentence, addresses written without a house
number or in other conventions, and they redact some non-names (a given name that is also a brand or a
place, `Grant Park`). They err towards redacting, which costs the loop a word of context, not a leak.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from pathlib import Path

KINDS = ("secret", "email", "iban", "card", "ip", "address", "phone", "name")
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
_STREET_TYPES = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace"
                 r"|Parkway|Pkwy|Highway|Hwy|Square|Sq|Circle|Crescent|Close|Row|Alley|Trail|Mews|Gardens|Walk")
_UNIT = r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|#)\.?\s*#?[A-Za-z0-9-]{1,6})?"
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?(?:[-/]\d{{1,4}})?,?\s+(?:[A-Z][\w'’.-]*\s+){{1,4}}(?:{_STREET_TYPES})\b\.?(?:\s(?:N|S|E|W|NE|NW|SE|SW)\b)?{_UNIT}"  # 221B Baker Street
    rf"|\b\d{{1,4}}(?:\s*(?:bis|ter))?,?\s+(?i:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|cours)"
    r"\s+(?:(?:de|du|des|la|le|l'|d')\s*)*[A-ZÀ-Ý][\w'’-]*(?:[ -][A-ZÀ-Ý][\w'’-]*){0,3}"  # 12 rue de la Paix
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|gasse|weg|platz|allee|damm|ring|ufer)\s+\d{1,4}\s?[a-z]?\b"  # Hauptstraße 5
    r"|\b(?:Via|Viale|Piazza|Corso|Calle|Avenida|Plaza|Paseo|Carrer|Rua|Praça)\s+(?:[A-Za-zÀ-ÿ'’]+\s+){1,4}\d{1,4}\b"
    r"|\bP\.?\s?O\.?\s+Box\s+\d{1,6}\b"                                                   # P.O. Box 1234
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{2}\b"                                   # SW1A 1AA
    r"|\b[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2},\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")              # Springfield, IL 62704
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


@functools.cache
def _names() -> tuple[frozenset[str], frozenset[str]]:
    folder = Path(__file__).with_name("names")
    read = lambda name: frozenset(line.strip() for line in (folder / name).read_text(encoding="utf-8").splitlines()
                                  if line.strip() and not line.startswith("#"))
    return read("given_names.txt"), read("surnames.txt")


# Given names that are also common words, places, months, brands or languages: redacted next to a
# surname or a cue, never alone.
AMBIGUOUS_GIVEN = frozenset("""
January February March April May June July August September October November December Jan Feb Mar Apr
Jun Jul Aug Sep Sept Oct Nov Dec Monday Tuesday
Wednesday Thursday Friday Saturday Sunday Will Mark Bill Frank Grant Chase Dawn Faith Hope Joy Grace Rose Lily
Iris Ivy Olive Ruby Amber Crystal Hazel Holly Daisy Violet Heather Jasmine Autumn Summer Winter Sandy Rocky
Storm River Forest Glen Dale Cliff Gene Jean Pat Sue Guy Max Rob Drew Carol Don Dean Earl Baron Duke Prince
Princess Harmony Trinity Destiny Melody Precious Genesis Kelvin Newton Tesla Mercedes Porsche Jaguar Victoria
Georgia Virginia Carolina Austin Florence Jordan Sydney Chelsea Lincoln Paris India China Savannah Phoenix
Brooklyn Sierra Aurora Eve Christian Angel Jack Ray Julia Ada Pascal Django Alexa Siri Apple Amazon Madison
Houston Dallas Denver Orlando Charlotte Adelaide Regina Santiago Salvador Victor Ashley Kennedy Mason Hunter
Cooper Taylor Parker Carter Tyler Morgan Harper Logan Bailey Sage Reed Wade Miles Page Lane Dallas Lou
""".split())  # noqa: SIM905
_CAP = r"[A-ZÀ-Ý][a-zà-ÿ'’-]+"
_TITLE_CUE = re.compile(rf"\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Madam|Herr|Frau|Mme|Mlle|Sra?|Dra?)\.?\s+((?:{_CAP}\s?){{1,3}})")
_STRONG_CUE = re.compile(rf"(?i:\bmy name is|\bmy name's|\bname:|\bcall me|\bsigned,?|\b(?:regards|sincerely|cheers|"
                         rf"best wishes|yours truly)[,!]?\s*\n)\s*((?:{_CAP}[ \t]?){{1,3}})")
_WEAK_CUE = re.compile(rf"(?i:\b(?:hi|hello|hey|dear|i'm|i am|this is|thanks|thank you),?)\s+({_CAP})")
_CAPWORDS = re.compile(rf"(?<![\w'’-]){_CAP}(?:\s+(?:[A-Z]\.\s+)?{_CAP})*")


def _name_span(text: str, start: int, words: list[str], given: frozenset[str], surnames: frozenset[str]) -> str:
    """A run of capitalised words with names inside replaced: given + surname (or any capitalised word
    after an unambiguous given name) -> [NAME]; a lone unambiguous given name inside a sentence -> [NAME]."""
    out, i = [], 0
    while i < len(words):
        word = words[i]
        if word in given and i + 1 < len(words) and (words[i + 1] in surnames or word not in AMBIGUOUS_GIVEN):
            j = i + 2
            while j < len(words) and words[j] in surnames:
                j += 1
            out.append(PLACEHOLDERS["name"])
            i = j
            continue
        if word in given and word not in AMBIGUOUS_GIVEN and len(words) == 1 and not _sentence_start(text, start):
            out.append(PLACEHOLDERS["name"])
        else:
            out.append(word)
        i += 1
    return " ".join(out)


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'“‘(")
    return not before or before[-1] in ".!?:\n*#>-"


def _redact_names(text: str) -> str:
    """The gazetteer first (so a full name after a cue goes whole), then the cues."""
    given, surnames = _names()

    def run(m: re.Match) -> str:
        words = re.split(r"\s+", m.group(0))
        return _name_span(text, m.start(), words, given, surnames) if any(w in given for w in words) else m.group(0)

    text = _CAPWORDS.sub(run, text)
    text = _TITLE_CUE.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + PLACEHOLDERS["name"]
                          + (" " if m.group(1).endswith(" ") else ""), text)
    text = _STRONG_CUE.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + PLACEHOLDERS["name"]
                           + (" " if m.group(1).endswith((" ", "\t")) else ""), text)
    text = _WEAK_CUE.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + PLACEHOLDERS["name"]
                         if m.group(1) in given else m.group(0), text)
    return text


_RULES: dict[str, list[tuple[re.Pattern, Callable[[re.Match], str | None]]]] = {
    "secret": [(_SECRET, _secret)],
    "email": [(_EMAIL, lambda m: PLACEHOLDERS["email"])],
    "iban": [(_IBAN, _iban)],
    "card": [(_CARD, _card)],
    "ip": [(_IPV4, _ipv4), (_IPV6, _ipv6)],
    "address": [(_ADDRESS, lambda m: PLACEHOLDERS["address"])],
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
        self._rules = [rule for kind in self.kinds for rule in _RULES.get(kind, [])]
        if "name" in self.kinds:
            _names()  # read the gazetteer now, not on the first request

    def redact(self, text: str) -> str:
        if not text:
            return text
        for pattern, check in self._rules:
            text = pattern.sub(lambda m, check=check: check(m) or m.group(0), text)
        if "name" in self.kinds:
            text = _redact_names(text)
        return text
