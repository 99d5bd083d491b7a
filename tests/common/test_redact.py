"""The redactor the traffic log applies before anything reaches the disk: each kind's true positives,
and the look-alikes (dates, versions, decimals, code) it must leave alone."""

from __future__ import annotations

import pytest

from tandem.common.redact import KINDS, Redactor, iban_ok, luhn_ok

R = Redactor()


@pytest.mark.parametrize("text,placeholder", [
    ("write to john.doe+tag@mail.example.co.uk today", "[EMAIL]"),
    ("call +1 (555) 123-4567", "[PHONE]"),
    ("call +44 20 7946 0958", "[PHONE]"),
    ("call 555 123 4567", "[PHONE]"),
    ("call 020-7946-0958", "[PHONE]"),
    ("call 555-1234", "[PHONE]"),
    ("card 4111 1111 1111 1111", "[CARD]"),
    ("card 5500-0000-0000-0004", "[CARD]"),
    ("card 378282246310005", "[CARD]"),
    ("host 192.168.1.20", "[IP]"),
    ("host 2001:db8::8a2e:370:7334", "[IP]"),
    ("host fe80::1ff:fe23:4567:890a", "[IP]"),
    ("iban GB82 WEST 1234 5698 7654 32", "[IBAN]"),
    ("iban DE89370400440532013000", "[IBAN]"),
    ("key sk-proj-Abcdefghijklmnop1234", "[SECRET]"),
    ("Authorization: Bearer abc.DEF-1234567890", "[SECRET]"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123", "[SECRET]"),
    ("aws AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
    ("digest e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "[SECRET]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "[SECRET]"),
])
def test_true_positives_become_typed_placeholders(text, placeholder):
    out = R.redact(text)
    assert placeholder in out
    assert not any(ch.isdigit() for ch in out.split(" ", 1)[1]) or placeholder == "[SECRET]", out


@pytest.mark.parametrize("text", [
    "on 2024-01-15 or 15/01/2024 or 01.02.2024",
    "version 1.2.3, python 3.11.4, numpy 1.26.4",
    "between 2019-2024, pi is 3.14159265358, order 12345678, x = 1234567",
    "1000000 + 2500000 = 3500000; price $1,234,567.89",
    "std::vector<int> a; a::b; at 12:30:45",
    "/usr/local/lib/python3.11/site-packages/foo_bar_baz_2024",
    "def test_redactor_handles_version_numbers_2024_v1234(): pass",
    "card-like but not Luhn: 4111 1111 1111 1112",
    "not an IP: 999.1.1.1 nor 1.2.3",
    "a word: antidisestablishmentarianismAntidisestablishmentarianism",
])
def test_look_alikes_are_left_alone(text):
    assert R.redact(text) == text


def test_kinds_can_be_chosen_and_unknown_kinds_are_refused():
    only_email = Redactor(["email"])
    assert only_email.redact("a@b.io +1 (555) 123-4567") == "[EMAIL] +1 (555) 123-4567"
    assert Redactor([]).redact("a@b.io") == "a@b.io"
    with pytest.raises(ValueError, match="unknown redaction kinds"):
        Redactor(["email", "names"])
    assert set(KINDS) == {"secret", "email", "iban", "card", "ip", "address", "phone", "name"}


def test_validators():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB83 WEST 1234 5698 7654 32")
    assert "[IBAN]" not in R.redact("GB00 WEST 1234 5698 7654 32")  # wrong check digits


def test_several_kinds_in_one_text():
    text = ("I'm jane@corp.com, +49 30 1234 5678, card 4111-1111-1111-1111, server 10.0.0.7, "
            "key sk-live-0123456789abcdefXYZ")
    out = R.redact(text)
    assert out == "I'm [EMAIL], [PHONE], card [CARD], server [IP], key [SECRET]"


@pytest.mark.parametrize("text,expected", [
    ("My name is Jane Roe and I need help.", "My name is [NAME] and I need help."),
    ("I talked to Jennifer yesterday about it.", "I talked to [NAME] yesterday about it."),
    ("Ask Michael Jordan, not me.", "Ask [NAME], not me."),
    ("Dr. Okonkwo and Mrs Anna Berg met.", "Dr. [NAME] and Mrs [NAME] met."),
    ("Hi Maria, the order is late.", "Hi [NAME], the order is late."),
    ("Thanks for the help.\nRegards,\nRobert Miller", "Thanks for the help.\nRegards,\n[NAME]"),
    ("I live at 221B Baker Street, Apt 4, London NW1 6XE.", "I live at [ADDRESS], London [ADDRESS]."),
    ("Ship to 1600 Pennsylvania Avenue NW, Suite 200, Washington", "Ship to [ADDRESS], Washington"),
    ("Send it to 12 rue de la Paix, or Hauptstraße 5, or Via Roma 10.",
     "Send it to [ADDRESS], or [ADDRESS], or [ADDRESS]."),
    ("Mail P.O. Box 1234, Springfield, IL 62704", "Mail [ADDRESS], [ADDRESS]"),
])
def test_names_and_addresses(text, expected):
    assert R.redact(text) == expected


@pytest.mark.parametrize("text", [
    "Will you help me? May I ask about June and Ruby on Rails?",  # common words that are also given names
    "Grace periods and Victoria Station are not people here; neither is Julia the language.",
    "The Python Software Foundation meets on Monday in April.",
    "Walk 3 blocks down Main Street and turn left.",  # a street without a house number is no address
    "Order 66 shipped in 2 boxes; see section 4.2 Road Safety.",
])
def test_name_and_address_look_alikes_are_left_alone(text):
    assert R.redact(text) == text
