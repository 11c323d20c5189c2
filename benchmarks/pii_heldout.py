"""Recall of the pii stage on freshly generated values (a stand-in for a held-out corpus).

The dev corpus' PII values come from one generator; a held-out corpus has other values and other
locales' phone formats. This script draws new values with Faker (a dev-only tool, not a project
dependency: ``pip install faker``) in 40 locales, puts them in short passages with and without
phone context, and prints recall per type as JSON. Seeded, so two runs print the same numbers.
"""

from __future__ import annotations

import json
import random
import zlib
from collections import defaultdict

from faker import Faker

from corpusforge.transforms.pii.engine import PiiScrubber

LOCALES = ["en_US", "en_GB", "de_DE", "de_CH", "de_AT", "fr_FR", "fr_CH", "it_IT", "es_ES", "nl_NL", "nl_BE",
           "sv_SE", "da_DK", "fi_FI", "pt_BR", "pt_PT", "en_AU", "en_CA", "en_IN", "pl_PL", "cs_CZ", "ja_JP",
           "en_NZ", "no_NO", "hu_HU", "ru_RU", "zh_CN", "ko_KR", "tr_TR", "el_GR", "ro_RO", "sk_SK", "sl_SI",
           "hr_HR", "en_IE", "fr_CA", "es_MX", "he_IL", "id_ID", "th_TH"]
PHONE_TEMPLATES = [
    "I would like to stop receiving messages to {}", "Can someone call me on {}? I have questions",
    "They're not answering at {}", "Please have the manager call me at {} I'd like to join",
    "I didn't get any message on my registered {}. Could you", "Personal Info:\nPhone:\n{}\n\nE-mail:",
    "Mobile: {}\nDesk:", "Fax: {}\nWelcome", "{}-Office\\,", "{} office\n", "{} mobile\n",
    "My phone number is {}", "Contact me at {} tomorrow", "Name: X\nPhone: {}",
]


def main() -> None:
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
            check("PHONE_NUMBER", v, "Some intro text.\n" + rng.choice(PHONE_TEMPLATES).format(v) + " More text.")
    fake = Faker("en_US")
    fake.seed_instance(1)
    for card in ["visa13", "visa16", "visa19", "mastercard", "amex", "discover", "jcb15", "jcb16", "maestro", "diners"]:
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
    report = {t: {"recall": round(a / b, 4), "n": b, "missed": missed[t][:10]} for t, (a, b) in sorted(per.items())}
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
