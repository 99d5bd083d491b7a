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
    assert set(KINDS) == {"secret", "email", "iban", "card", "ip", "phone"}


def test_validators():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB83 WEST 1234 5698 7654 32")
    assert "[IBAN]" not in R.redact("GB00 WEST 1234 5698 7654 32")  # wrong check digits


def test_several_kinds_in_one_text():
    text = ("I'm jane@corp.com, +49 30 1234 5678, card 4111-1111-1111-1111, server 10.0.0.7, "
            "key sk-live-0123456789abcdefXYZ")
    out = R.redact(text)
    assert out == "I'm [EMAIL], [PHONE], card [CARD], server [IP], key [SECRET]"
