"""Every written form of an address or number is scrubbed whole: IPv6 in all its shapes, IP hosts
in URLs, SSN layouts, UATP and Diners cards, glued phones, dashed IBANs; and never in pieces."""

from __future__ import annotations

import ipaddress
import random
import re

import pytest

from corpusforge.transforms.pii.engine import PiiScrubber, Span, resolve_overlaps


@pytest.fixture(scope="module")
def scrubber() -> PiiScrubber:
    s = PiiScrubber()
    s.setup()
    return s


def _scrubbed_whole(scrubber: PiiScrubber, text: str, value: str, entity: str) -> None:
    out = scrubber.scrub(text)
    assert value not in out.text, out.spans
    assert out.text.count(f"<{entity}>") == 1, (out.text, out.spans)
    # nothing of the value is left beside the placeholder
    assert out.text == text.replace(value, f"<{entity}>"), out.text


@pytest.mark.parametrize(
    "value",
    [
        "::1",
        "fe80::1",
        "ff02::1",
        "2001:db8::",
        "fe80::1%eth0",
        "fe80::7:8%1",
        "2001:db8::/32",
        "::1/128",
        "::ffff:192.0.2.1",
        "::10.0.0.1",
        "0:0:0:0:0:FFFF:129.144.52.38",
        "2001:db8::192.168.1.1",
        "FEDC:BA98:7654:3210:FEDC:BA98:7654:3210",
        "1080::8:800:200C:417A",
        "64:ff9b::198.51.100.7",
    ],
)
def test_every_ipv6_form_is_replaced_whole(scrubber, value):
    _scrubbed_whole(scrubber, f"The host answered from {value} this morning.", value, "IP_ADDRESS")


def test_unspecified_address_needs_an_address_reading(scrubber):
    _scrubbed_whole(scrubber, "Bind the server to :: and restart.", "::", "IP_ADDRESS")
    assert scrubber.scrub("listen on [::]:8080 now").counts == {"IP_ADDRESS": 1}
    for code in ["length :: [a] -> Int", "f :: Int -> Int", "Foo::Bar and ::std::string", "a :: b in prose"]:
        assert scrubber.scrub(code).text == code


@pytest.mark.parametrize(
    "url, host",
    [
        ("http://[2001:db8::1]/index.html", "2001:db8::1"),
        ("https://192.168.10.20:8443/admin/login", "192.168.10.20"),
        ("http://[fe80::1%25eth0]:80/status", "fe80::1%25eth0"),
        ("ftp://10.1.2.3/pub/file-2024-03-01.tar.gz", "10.1.2.3"),
    ],
)
def test_ip_literal_url_hosts_are_scrubbed(scrubber, url, host):
    out = scrubber.scrub(f"Open {url} in a browser.")
    assert host not in out.text and "<IP_ADDRESS>" in out.text
    path = url.split(host, 1)[1].split("/", 1)[1] if "/" in url.split(host, 1)[1] else ""
    assert path in out.text  # the path (dates, ids, versions) is left alone


def test_skip_urls_still_leaves_digits_in_paths(scrubber):
    text = "See https://example.com/orders/415-555-0132/item/4111111111111111?v=1.2.3.4 and more."
    assert scrubber.scrub(text).text == text


def test_url_credentials_become_credential(scrubber):
    out = scrubber.scrub("clone https://deploy:S3cr3t-pa55@git.example.com/repo.git now")
    assert out.text == "clone https://<CREDENTIAL>@git.example.com/repo.git now"
    assert out.counts == {"CREDENTIAL": 1}
    out = scrubber.scrub("DATABASE_URL=postgres://app:hunter2@10.0.0.5:5432/prod")
    assert "hunter2" not in out.text and "10.0.0.5" not in out.text and "/prod" in out.text
    assert out.counts == {"CREDENTIAL": 1, "IP_ADDRESS": 1}


def test_overlapping_spans_merge_into_one():
    spans = [
        Span("IP_ADDRESS", 0, 14, 0.85),
        Span("IP_ADDRESS", 10, 21, 0.85),
        Span("PHONE_NUMBER", 30, 40, 0.7),
    ]
    merged = resolve_overlaps(spans)
    assert merged == [Span("IP_ADDRESS", 0, 21, 0.85), Span("PHONE_NUMBER", 30, 40, 0.7)]


def _random_ipv6(rng: random.Random) -> str:
    addr = ipaddress.IPv6Address(
        rng.getrandbits(128)
        if rng.random() < 0.5
        else (rng.getrandbits(32) << 96) | rng.getrandbits(rng.choice([8, 16, 32]))
    )
    form = rng.randrange(6)
    if form == 0:
        return addr.compressed
    if form == 1:
        return addr.exploded
    if form == 2:  # embedded IPv4 tail
        v4 = ipaddress.IPv4Address(rng.getrandbits(32))
        return f"{rng.choice(['::ffff:', '::', '2001:db8::', '0:0:0:0:0:ffff:', '64:ff9b::'])}{v4}"
    if form == 3:
        return f"{addr.compressed}%{rng.choice(['eth0', 'en1', 'wlan0', '3'])}"
    if form == 4:
        return f"{addr.compressed}/{rng.randrange(8, 129)}"
    return addr.compressed.upper()


def test_no_digit_run_of_a_generated_address_survives(scrubber):
    rng = random.Random(23)
    values = [_random_ipv6(rng) for _ in range(300)] + [
        str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(100)
    ]
    templates = ["Traffic from {} was dropped.", "host={} port=ssh", "ping {}", "(seen at {})", "addr: {}."]
    texts = [rng.choice(templates).format(v) for v in values]
    for value, text, out in zip(values, texts, scrubber.scrub_batch(texts), strict=True):
        assert out.counts == {"IP_ADDRESS": 1}, (value, out.text)
        assert not re.search(r"\d", out.text), (value, out.text)  # the templates hold no digit
        assert out.text == text.replace(value, "<IP_ADDRESS>"), (value, out.text)


@pytest.mark.parametrize(
    "text, value",
    [
        ("Social security number: 078051121 on file", "078051121"),
        ("SSN 078-051121 was issued", "078-051121"),
        ("He wrote 078.05.1123 on the form.", "078.05.1123"),
        ("He wrote 078 05 1123 on the form.", "078 05 1123"),
        ("He wrote 078-05-1123 on the form.", "078-05-1123"),
    ],
)
def test_ssn_layouts(scrubber, text, value):
    _scrubbed_whole(scrubber, text, value, "US_SSN")


@pytest.mark.parametrize(
    "text",
    [
        "Order 078051121 shipped.",
        "Ticket 078-051121 closed.",
        "Mixed 078-05 1123 separators.",
        "All nines 999-99-9999 and 111-11-1111 and 000-12-3456.",
    ],
)
def test_ssn_forms_without_evidence_are_left(scrubber, text):
    assert scrubber.scrub(text).text == text


@pytest.mark.parametrize(
    "text, value",
    [
        ("UATP card 122000000000003 on the ticket", "122000000000003"),
        ("My credit card number is 30569309025904", "30569309025904"),
        ("credit card number: 3056 930902 5904.", "3056 930902 5904"),
    ],
)
def test_cards(scrubber, text, value):
    _scrubbed_whole(scrubber, text, value, "CREDIT_CARD")


@pytest.mark.parametrize(
    "text, value",
    [
        ("The number is415-555-0132 for sales.", "415-555-0132"),
        ("Call 91-415-555-0132 from abroad.", "91-415-555-0132"),
        ("Dial 44 (415) 555-0132 today.", "44 (415) 555-0132"),
    ],
)
def test_glued_phones_and_country_codes_without_plus(scrubber, text, value):
    _scrubbed_whole(scrubber, text, value, "PHONE_NUMBER")


def test_iban_dashes_and_case(scrubber):
    _scrubbed_whole(
        scrubber,
        "Pay AL47-2121-1009-0000-0002-3569-8741 now.",
        "AL47-2121-1009-0000-0002-3569-8741",
        "IBAN_CODE",
    )
    _scrubbed_whole(
        scrubber,
        "Pay AL47 2121 1009 0000 0002 3569 8741 now.",
        "AL47 2121 1009 0000 0002 3569 8741",
        "IBAN_CODE",
    )
    _scrubbed_whole(scrubber, "my iban is gb82west12345698765432", "gb82west12345698765432", "IBAN_CODE")
    for text in [
        "Pay GB82WeST12345698765432 now.",
        "Pay gb82WEST12345698765432 now.",
        "Pay AL47-2121 1009-0000 0002-3569-8741 now.",
    ]:
        assert scrubber.scrub(text).text == text
