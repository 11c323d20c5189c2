"""Recall of the pii stage on freshly generated values (a stand-in for a held-out corpus).

The dev corpus' PII values come from one generator; a held-out corpus has other values and other
locales' phone formats. This script draws new values with Faker (a dev-only tool, not a project
dependency: ``pip install faker``) in 40 locales, puts them in short passages with and without
phone context, and prints recall per type as JSON. Seeded, so two runs print the same numbers.

``--forms`` scores a second, hand-written set instead (the ways recognizer test suites write
values: every IPv6 form, SSN layouts, UATP and Diners cards, glued phones, dashed IBANs, secrets
and URL credentials), each in a neutral English sentence: recall per type, spans left in pieces
(any digit run of the value survives beside a placeholder), and how often a negative case (a
string that must be left alone) is changed. ``--ssn-forms`` counts each SSN layout on the dev
corpus' base pages and a scale corpus (the evidence behind which layouts need context).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import zlib
from collections import defaultdict
from pathlib import Path

from faker import Faker

from corpusforge.transforms.pii.engine import PiiScrubber

LOCALES = [
    "en_US",
    "en_GB",
    "de_DE",
    "de_CH",
    "de_AT",
    "fr_FR",
    "fr_CH",
    "it_IT",
    "es_ES",
    "nl_NL",
    "nl_BE",
    "sv_SE",
    "da_DK",
    "fi_FI",
    "pt_BR",
    "pt_PT",
    "en_AU",
    "en_CA",
    "en_IN",
    "pl_PL",
    "cs_CZ",
    "ja_JP",
    "en_NZ",
    "no_NO",
    "hu_HU",
    "ru_RU",
    "zh_CN",
    "ko_KR",
    "tr_TR",
    "el_GR",
    "ro_RO",
    "sk_SK",
    "sl_SI",
    "hr_HR",
    "en_IE",
    "fr_CA",
    "es_MX",
    "he_IL",
    "id_ID",
    "th_TH",
]
PHONE_TEMPLATES = [
    "I would like to stop receiving messages to {}",
    "Can someone call me on {}? I have questions",
    "They're not answering at {}",
    "Please have the manager call me at {} I'd like to join",
    "I didn't get any message on my registered {}. Could you",
    "Personal Info:\nPhone:\n{}\n\nE-mail:",
    "Mobile: {}\nDesk:",
    "Fax: {}\nWelcome",
    "{}-Office\\,",
    "{} office\n",
    "{} mobile\n",
    "My phone number is {}",
    "Contact me at {} tomorrow",
    "Name: X\nPhone: {}",
]


SENTENCES = [
    "Please note {} for the record.",
    "The value was {} yesterday.",
    "We saw {} in the log.",
    "Send it to {} today.",
    "It said ({}) and stopped.",
]
# (entity, value): values written as recognizer test suites write them (made up for this script).
FORM_CASES: list[tuple[str, str]] = [
    *[
        ("IP_ADDRESS", v)
        for v in [
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
            "ff02::2",
            "fe80::1%eth0",
            "fe80::a:b%en0",
            "2001:db8::/32",
            "::1/128",
            "::/0",
            "::ffff:192.0.2.1",
            "::10.0.0.1",
            "::ffff:10.1.2.3",
            "0:0:0:0:0:FFFF:129.144.52.38",
            "0:0:0:0:0:0:13.1.68.3",
            "2001:db8::192.168.1.1",
            "2001:0db8:0000:0000:0000:ff00:0042:8329",
            "2001:db8:0:0:1:0:0:1",
            "2001:DB8::8:800:200C:417A",
            "FF01::101",
            "fe80::200:f8ff:fe21:67cf",
            "64:ff9b::198.51.100.7",
            "2001:db8:a::123/64",
            "192.168.0.1",
            "10.0.0.255",
            "8.8.8.8",
            "172.16.254.1/24",
            "255.255.255.0",
            "100.64.0.1",
            "1.1.1.1",
        ]
    ],
    *[
        ("US_SSN", v)
        for v in [
            "078-05-1121",
            "078 05 1121",
            "078.05.1121",
            "219-09-9998",
            "536-90-4399",
            "536 90 4399",
            "536.90.4399",
            "457-55-5462",
        ]
    ],
    *[
        ("CREDIT_CARD", v)
        for v in [
            "4012888888881881",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "5105105105105100",
            "2223003122003222",
            "378282246310005",
            "371449635398431",
            "3782 822463 10005",
            "6011111111111117",
            "6011000990139424",
            "3530111333300000",
            "3566002020360505",
            "30569309025904",
            "38520000023237",
            "3056 930902 5904",
            "122000000000003",
            "6759649826438453",
            "4222222222222",
        ]
    ],
    *[
        ("PHONE_NUMBER", v)
        for v in [
            "(415) 555-0132",
            "415-555-0132",
            "415.555.0132",
            "+1 415 555 0132",
            "+1-415-555-0132",
            "1-415-555-0132",
            "91-415-555-0132",
            "+44 20 7946 0958",
            "+49 30 901820",
            "+33 1 42 68 53 00",
            "+91 98765 43210",
            "+61 2 9374 4000",
            "+81 3-3224-9999",
            "(212) 555-0199 ext. 12",
            "+972-3-7654321",
        ]
    ],
    *[
        ("IBAN_CODE", v)
        for v in [
            "AL47212110090000000235698741",
            "AL47 2121 1009 0000 0002 3569 8741",
            "AL47-2121-1009-0000-0002-3569-8741",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "ES9121000418450200051332",
            "CH9300762011623852957",
            "BE68539007547034",
            "IT60X0542811101000000123456",
        ]
    ],
    *[
        ("EMAIL_ADDRESS", v)
        for v in ["info@example.com", "first.last+tag@sub.example.co.uk", "a_b-c@example.org"]
    ],
    *[
        ("SECRET", v)
        for v in [
            "AKIAZ7QX4L2M5N6P3R7T",
            "ASIAY3TQ6M2L5N7P4R2X",
            "ghp_4fQx9Lm2Zt7Vb1Nc8Rk3Wd6Yh0Pj5Sa2Ge7Ku",
            "gho_9Zq4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5Sa2Ge7KuQ",
            "glpat-x9Zq4Lm2Tt7Vb1Nc8Rk3W",
            "xoxb-2048193847-5120398471-Qm7Zx4Lp2Tt9Vb1Nc8Rk3Wd6",
            "xoxp-1111222233-4444555566-777788889999-aB3dE5fG7hJ9kL2mN4pQ6rS8tU0vW1x",
            "sk_live_51HqZx4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5",
            "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "AIzaSyB3x9Zq4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5Sa",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.Qm7Zx4Lp2Tt9Vb1Nc8Rk3Wd6Yh0",
        ]
    ],
]
# secrets and credentials are scored in their natural setting (an assignment, a URL)
SETTING_CASES: list[tuple[str, str, str]] = [
    ("SECRET", "k8#Vq2!zR7mL", 'DB_PASSWORD="{}"'),
    ("SECRET", "Zq4Lm2Tt7Vb1Nc8Rk3Wd6Yh0", "client_secret: {}"),
    ("SECRET", "wT9qZ4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5Sa2Ge7KuQx", "aws_secret_access_key = {}"),
    ("SECRET", "b7Yt2Qk9LmZx4Rv8", "api_key={}&format=json"),
    ("SECRET", "Hy6#pLq2Wz9!", "'password': '{}',"),
    ("CREDENTIAL", "deploy:S3cr3t-pa55", "git clone https://{}@git.example.com/r.git"),
    ("CREDENTIAL", "app:hunter2", "postgres://{}@db.internal:5432/prod"),
    ("CREDENTIAL", "bob:pw123456", "ftp://{}@ftp.example.org/pub/"),
    ("IP_ADDRESS", "2001:db8::1", "open http://[{}]/index.html"),
    ("IP_ADDRESS", "203.0.113.9", "open https://{}:8443/admin"),
    ("IP_ADDRESS", "fe80::1%25eth0", "open http://[{}]/status"),
    ("IP_ADDRESS", "::", "bind the server to {} to listen on all"),
    ("IP_ADDRESS", "::1", "localhost is {} in v6"),
    ("US_SSN", "078051121", "SSN: {}"),
    ("US_SSN", "078-051121", "social security number {}"),
    ("PHONE_NUMBER", "415-555-0132", "call is{} now"),
    ("CREDIT_CARD", "30569309025904", "my credit card number is {}"),
]
# strings recognizer suites expect to be left alone (made up for this script)
NEGATIVES: list[str] = [
    "1.2.3",
    "v1.2.3.4",
    "version 10.0.19041.1",
    "256.256.256.256",
    "1.2.3.4.5",
    "999.1.1.1",
    "2001:db8::g",
    "1:2",
    "12:30:45",
    "std::vector<int>",
    "foo::bar",
    "a::b",
    "x :: Int",
    "dead::beef",
    ":::",
    "1::2::3",
    "4111111111111112",
    "1234567890123456",
    "9780306406157",
    "ISBN 978-0-306-40615-7",
    "1234-5678-9012-3456",
    "000-12-3456",
    "666-12-3456",
    "900-12-3456",
    "123-00-4567",
    "123-45-0000",
    "111-11-1111",
    "078-05 1120",
    "078051120 items",
    "order 123456789",
    "ticket 123-456789",
    "GB82WEST12345698765433",
    "GB82WeST12345698765432",
    "AL47-2121 1009-0000 0002-3569-8741",
    "XX82WEST12345698765432",
    "2024-03-15",
    "03/22/2024",
    "15.03.2024",
    "1992-02-08 20:15:24",
    "$1,234,567.89",
    "12 345 678 units",
    "94103-1234",
    "page 123-145",
    "2019-2020",
    "1700000000000",
    "12345678901234",
    "https://example.com/orders/415-555-0132/item",
    "https://x.org/p/4111111111111111",
    "commit 3f9c2a7b1e4d5f6a7b8c9d0e1f2a3b4c5d6e7f8a",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA",
    "password: required",
    "api_key = YOUR_API_KEY",
    "token = os.environ['TOKEN']",
    "secret = ${SECRET}",
    "password=********",
    "the token: a word",
    "AKIA123",
    "eyJ only",
    "sk_live_short",
    "user@localhost",
    "name@",
    "@handle",
    "mailto:",
    "12:00-14:00",
    "+",
    "(555)",
    "555-0132",
]


def forms_report(scrubber: PiiScrubber) -> dict:
    """Recall per type, partial scrubs and the negative change rate on the hand-written set."""
    cases = [(t, v, SENTENCES[i % len(SENTENCES)].format(v)) for i, (t, v) in enumerate(FORM_CASES)]
    cases += [(t, v, tpl.format(v)) for t, v, tpl in SETTING_CASES]
    outs = scrubber.scrub_batch([text for _, _, text in cases])
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed: dict[str, list[str]] = defaultdict(list)
    partial = []
    for (typ, value, text), out in zip(cases, outs, strict=True):
        per[typ][1] += 1
        rest = text.replace(value, " ")
        if value in out.text or f"<{typ}>" not in out.text:
            missed[typ].append(value)
            continue
        per[typ][0] += 1
        # a digit run of the value that survives (and was not in the sentence around it) is a piece
        left = [
            r
            for r in re.findall(r"\d+", value)
            if re.search(rf"(?<!\d){r}(?!\d)", out.text) and not re.search(rf"(?<!\d){r}(?!\d)", rest)
        ]
        if left:
            partial.append((value, out.text))
    neg_texts = [f"Note: {n} here." for n in NEGATIVES]
    changed = [
        n
        for n, o in zip(NEGATIVES, scrubber.scrub_batch(neg_texts), strict=True)
        if o.text != f"Note: {n} here."
    ]
    return {
        "recall": {
            t: {"recall": round(a / b, 4), "n": b, "missed": missed[t]} for t, (a, b) in sorted(per.items())
        },
        "partial": partial,
        "negatives": {
            "n": len(NEGATIVES),
            "changed": len(changed),
            "rate": round(len(changed) / len(NEGATIVES), 4),
            "examples": changed,
        },
    }


def ssn_forms(dev: Path, scale: Path | None) -> dict:
    """How often each SSN layout occurs on the dev corpus' base pages (and a scale corpus)."""
    forms = {
        "ddd-dd-dddd": r"\d{3}-\d{2}-\d{4}",
        "ddd dd dddd": r"\d{3} \d{2} \d{4}",
        "ddd.dd.dddd": r"\d{3}\.\d{2}\.\d{4}",
        "ddddddddd": r"\d{9}",
        "ddd-dddddd": r"\d{3}-\d{6}",
    }
    rx = {k: re.compile(rf"(?<![\w\-.]){v}(?![\w\-]|\.\d)") for k, v in forms.items()}
    kinds = {}
    for line in (dev / "labels.jsonl").open(encoding="utf-8"):
        rec = json.loads(line)
        kinds[rec["id"]] = rec["kind"]
    with gzip.open(dev / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        base = [d["text"] for d in map(json.loads, f) if kinds.get(d["id"]) == "base"]
    corpora = {"dev_base_pages": base}
    if scale is not None:
        with gzip.open(scale, "rt", encoding="utf-8") as f:
            corpora["scale"] = [json.loads(line).get("text", "") for line in f]
    return {
        name: {k: sum(len(r.findall(t)) for t in texts) for k, r in rx.items()} | {"docs": len(texts)}
        for name, texts in corpora.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--forms", action="store_true", help="score the hand-written forms set")
    ap.add_argument("--ssn-forms", action="store_true", help="count SSN layouts on the dev corpus")
    ap.add_argument("--dev", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"))
    ap.add_argument("--scale", default=None, help="a scale corpus (JSONL.gz) to count SSN layouts on too")
    args = ap.parse_args()
    if args.ssn_forms:
        print(json.dumps(ssn_forms(Path(args.dev), Path(args.scale) if args.scale else None), indent=1))
        return
    if args.forms:
        scrubber = PiiScrubber()
        scrubber.setup()
        report = forms_report(scrubber)
        print(json.dumps(report, indent=1, ensure_ascii=False))
        sys.exit(0)
    faker_recall()


def faker_recall() -> None:
    rng = random.Random(7)
    scrubber = PiiScrubber()
    scrubber.ready()
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed: dict[str, list[str]] = defaultdict(list)

    def check(typ: str, value: str, text: str) -> None:
        out = scrubber.scrub(text).text
        per[typ][1] += 1
        if value in out:
            missed[typ].append(value)
        else:
            per[typ][0] += 1

    for loc in LOCALES:
        fake = Faker(loc)
        fake.seed_instance(zlib.crc32(loc.encode()))
        for _ in range(25):
            v = fake.phone_number()
            check(
                "PHONE_NUMBER",
                v,
                "Some intro text.\n" + rng.choice(PHONE_TEMPLATES).format(v) + " More text.",
            )
    fake = Faker("en_US")
    fake.seed_instance(1)
    for card in [
        "visa13",
        "visa16",
        "visa19",
        "mastercard",
        "amex",
        "discover",
        "jcb15",
        "jcb16",
        "maestro",
        "diners",
    ]:
        for _ in range(30):
            v = fake.credit_card_number(card)
            check("CREDIT_CARD", v, f"Please block my card {v} asap.")
    for loc in ["en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT"]:
        fake = Faker(loc)
        fake.seed_instance(zlib.crc32(loc.encode()))
        for _ in range(30):
            v = fake.iban()
            check("IBAN_CODE", v, f"Transfer from {v} to other accounts")
    fake = Faker("en_US")
    fake.seed_instance(2)
    for _ in range(100):
        v = fake.ssn()
        check("US_SSN", v, f"His social security number is {v}")
        v = fake.ipv4()
        check("IP_ADDRESS", v, f"The server at {v} was down.")
        v = fake.ipv6()
        check("IP_ADDRESS", v, f"Connect to {v} now.")
        v = fake.email()
        check("EMAIL_ADDRESS", v, f"What's your email? {v}")
    report = {
        t: {"recall": round(a / b, 4), "n": b, "missed": missed[t][:10]} for t, (a, b) in sorted(per.items())
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
