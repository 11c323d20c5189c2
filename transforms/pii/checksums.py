"""Check digits of the identifiers PII detection recognises, free of presidio.

Kept apart from :mod:`.recognizers` (which imports presidio, ~1.4 CPU s) so that the run report,
which masks card numbers in its rejected examples, can check them without loading presidio.
"""

from __future__ import annotations


def luhn_ok(digits: str) -> bool:
    """The Luhn mod-10 check every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0
