"""presidio recognizers for the PII stage, written for web text and a blank (model-free) NLP engine.

presidio's stock pattern recognizers fall short on crawled pages: the phone recognizer knows a few
countries' formats and relies on lemma-based context boosting (no lemmas without a spaCy model, so
every phone scores below threshold), the credit-card pattern misses 12-digit Maestro, 19-digit Visa,
2-series Mastercard and 15-digit JCB numbers, and the IP and phone patterns replace dates, version
numbers and ``::`` in code. Each recognizer here finds loose candidates with one regex and then
decides with a validator (Luhn, IBAN mod 97, SSN area rules, ``ipaddress``, ``phonenumbers``) or,
for formats that are ambiguous on their own, with context words read directly from the raw text.

Scores: a validated strong match scores :data:`STRONG`; a weak candidate with supporting context
:data:`CONTEXT`; without context :data:`WEAK` (below the default threshold, so it is kept only when
the user lowers ``pii.score_threshold``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import phonenumbers
from presidio_analyzer import EntityRecognizer, Pattern, RecognizerResult
from presidio_analyzer.predefined_recognizers import EmailRecognizer

from corpusforge.schemas.config import NER_ENTITIES, PII_ENTITIES
from corpusforge.transforms.pii.checksums import luhn_ok
from corpusforge.transforms.pii.secrets import SecretRecognizer, UrlCredentialRecognizer

STRONG = 0.85
CONTEXT = 0.7
WEAK = 0.3

# A sentinel a window never contains (the normalize stage strips control characters): context
# lookups stop at it so that batched windows of different documents never lend each other context.
SEPARATOR = "\x1e"


def _context_before(text: str, start: int, chars: int) -> str:
    lo = max(0, start - chars)
    before = text[lo:start]
    cut = before.rfind(SEPARATOR)
    return (before[cut + 1 :] if cut >= 0 else before).lower()


def _context_after(text: str, end: int, chars: int) -> str:
    after = text[end : end + chars]
    cut = after.find(SEPARATOR)
    return (after[:cut] if cut >= 0 else after).lower()


class _RegexRecognizer(EntityRecognizer):
    """Shared plumbing: one candidate regex, a per-match ``score`` method returning None to drop."""

    ENTITY = ""
    CANDIDATE: re.Pattern[str]

    def __init__(self, context_chars: int = 48) -> None:
        self.context_chars = context_chars
        super().__init__(supported_entities=[self.ENTITY], supported_language="en", name=type(self).__name__)

    def load(self) -> None:  # nothing to load: patterns are compiled at import
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        out = []
        for m in self.CANDIDATE.finditer(text):
            found = self.score(text, m)
            if found is None:
                continue
            score, start, end = found
            out.append(RecognizerResult(self.ENTITY, start, end, score))
        return out

    def score(self, text: str, m: re.Match[str]) -> tuple[float, int, int] | None:
        raise NotImplementedError


# --- credit cards (luhn_ok: in .checksums, which the report uses without presidio) -------------

# Issuer prefixes (IIN ranges) and the lengths each network issues. A Luhn-valid number outside
# these ranges (ISBN-13s, timestamps, order numbers: one in ten passes Luhn) is not a card.
_CARD_RANGES: list[tuple[int, int, frozenset[int]]] = [
    (1, 1, frozenset({15})),  # UATP (airline cards)
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),
    (37, 37, frozenset({15})),  # American Express
    (300, 305, frozenset({14, 16})),
    (309, 309, frozenset({14, 16})),  # Diners Club
    (36, 36, frozenset({14, 16})),
    (38, 39, frozenset({14, 16})),
    (6011, 6011, frozenset({16, 19})),
    (644, 649, frozenset({16, 19})),
    (65, 65, frozenset({16, 19})),  # Discover
    (35, 35, frozenset({16, 17, 18, 19})),  # JCB
    (1800, 1800, frozenset({15})),
    (2131, 2131, frozenset({15})),  # JCB 15-digit
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
    (50, 50, frozenset(range(12, 20))),
    (56, 69, frozenset(range(12, 20))),  # Maestro
    (604, 604, frozenset(range(12, 20))),  # Maestro 0604 (leading zero handled below)
]


def card_network_ok(digits: str) -> bool:
    n = len(digits)
    if digits.startswith("0604"):
        return 12 <= n <= 19
    for lo, hi, lengths in _CARD_RANGES:
        width = len(str(lo))
        prefix = int(digits[:width])
        if lo <= prefix <= hi and n in lengths:
            return True
    return False


class CreditCardRecognizer(_RegexRecognizer):
    """12-19 digit card numbers, plain or grouped with spaces or dashes; issuer range and Luhn."""

    ENTITY = "CREDIT_CARD"
    CANDIDATE = re.compile(r"(?<![\w.,\-/])\d(?:[ \-]?\d){11,18}(?![\w\-/]|[.,]\d)")

    def score(self, text: str, m: re.Match[str]) -> tuple[float, int, int] | None:
        raw = m.group()
        digits = raw.replace(" ", "").replace("-", "")
        if not card_network_ok(digits) or not luhn_ok(digits):
            return None
        if " " in raw or "-" in raw:
            # grouped numbers: groups must look like a card's (4s, or Amex/Diners 4-6-5/4-6-4)
            groups = [len(g) for g in re.split(r"[ \-]", raw)]
            if not (all(g == 4 for g in groups[:-1]) or groups[:2] == [4, 6]):
                return None
        return STRONG + 0.1, m.start(), m.end()


# --- IBAN -------------------------------------------------------------------------------------

# IBAN length per country (ISO 13616 registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BI": 27,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DJ": 27,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FK": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "LY": 25,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MN": 20,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NI": 28,
    "NL": 18,
    "NO": 15,
    "OM": 23,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "RU": 33,
    "SA": 24,
    "SC": 31,
    "SD": 18,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "SO": 23,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
    "YE": 30,
}


def iban_ok(iban: str) -> bool:
    """Country length and the ISO 7064 mod-97 check (valid IBANs leave remainder 1)."""
    iban = iban.upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


class IbanRecognizer(_RegexRecognizer):
    """IBANs compact or in groups of four (spaces or dashes, one kind per number); the country fixes
    the length. One case throughout: ISO 13616 prints them upper case, and people typing one in a
    message write it all lower case (``my iban is gb42nawi...``), but mixed case (``GB82WeST...``)
    is a word or an id that happens to pass mod 97 (one string in 97 does)."""

    ENTITY = "IBAN_CODE"
    CANDIDATE = re.compile(
        r"(?<![\w\-])(?:[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11,30}|[a-z]{2}\d{2}(?:[ \-]?[a-z0-9]){11,30})"
    )

    def score(self, text: str, m: re.Match[str]) -> tuple[float, int, int] | None:
        raw = m.group()
        want = IBAN_LENGTHS.get(raw[:2].upper())
        if want is None:
            return None
        seps = {ch for ch in raw if ch in " -"}
        if len(seps) > 1:
            return None
        taken, end = 0, m.start()
        for i, ch in enumerate(raw):
            if ch not in " -":
                taken += 1
                if taken == want:
                    end = m.start() + i + 1
                    break
        else:
            return None
        if end < len(text) and (
            text[end].isalnum() or (text[end] == "-" and text[end + 1 : end + 2].isalnum())
        ):
            return None  # longer than its country allows
        compact = text[m.start() : end].replace(" ", "").replace("-", "")
        return (STRONG + 0.1, m.start(), end) if iban_ok(compact.upper()) else None


# --- US social security numbers -----------------------------------------------------------------

_SSN_CONTEXT = re.compile(
    r"ssn|social security|social sec|ss#|ss #|\bss no|sozialversicherung|taxpayer|\btin\b"
)


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """SSA rules: area 000, 666 and 900-999, group 00 and serial 0000 are never issued."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


class UsSsnRecognizer(_RegexRecognizer):
    """US SSNs: the 3-2-4 layout with one separator kind stands alone; other layouts need context.

    Which forms to take without a context word was decided by counting each layout on the dev
    corpus' 811 base pages and the 3,000-document scale corpus (``benchmarks/pii_heldout.py
    --ssn-forms``): 3-2-4 with spaces or dots occurs 0 times on either, and 3-2-4 with dashes only
    as injected SSNs, while bare 9-digit runs occur 4 times on base pages and 11 on the scale
    corpus, every one an id or a count (``cmsID=565118282``, ``335544320 Gitterpunkte``,
    ``@100046729``, a German phone number). ``123-456789`` never occurs; presidio rates it as weak
    as a bare run (0.05). So ``078-05-1120``, ``078 05 1120`` and ``078.05.1120`` are taken on their
    own; ``078051120`` and ``078-051120`` only after an SSN context word (``ssn``, ``social
    security``...) and otherwise score :data:`WEAK`. Unissuable numbers (SSA area/group/serial
    rules) and one repeated digit never match; mixed separators (``078-05 1120``) never match.
    """

    ENTITY = "US_SSN"
    CANDIDATE = re.compile(r"(?<![\w\-.])(\d{3})(?:([\- .])(\d{2})\2|(-)?(\d{2}))(\d{4})(?![\w\-]|\.\d)")

    def score(self, text: str, m: re.Match[str]) -> tuple[float, int, int] | None:
        area, sep, group_a, dash6, group_b, serial = m.groups()
        group = group_a or group_b
        if not ssn_ok(area, group, serial) or len(set(area + group + serial)) == 1:
            return None
        if sep is not None:
            return STRONG, m.start(), m.end()
        if _SSN_CONTEXT.search(_context_before(text, m.start(), self.context_chars)):
            return CONTEXT + 0.1, m.start(), m.end()
        return WEAK, m.start(), m.end()


# --- IP addresses -------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
_VERSION_BEFORE = re.compile(r"\b(?:v|version|release|ver\.?|build|firmware|os)\s*$")
# IPv6 in every textual form RFC 4291/5952 allow: compressed (``::1``, ``fe80::1``, ``::``), with
# an embedded IPv4 tail (``::ffff:192.0.2.1``, ``0:0:0:0:0:FFFF:129.144.52.38``), a zone id
# (``fe80::1%eth0``, ``%25eth0`` inside URLs) and a prefix length (``2001:db8::/32``). The IPv4
# tail is tried before a hex group so that ``2001:db8::192.168.1.1`` is one match, never
# ``2001:db8::192`` with three octets left behind.
_IPV6 = (
    rf"(?<![\w:.])(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{_IPV4}|[0-9A-Fa-f]{{1,4}})?"
    r"(?:%(?:25)?[0-9A-Za-z](?:[\w\-]|\.(?=\w)){0,15})?(?:/\d{1,3}(?!\d|\.\d))?(?![\w:]|\.\d)"
)
_IP_CONTEXT = re.compile(
    r"\bip\b|ipv6|address|\baddr\b|\bhost|listen|\bbind|unspecified|route|loopback|server"
)
# ``x :: Int`` (Haskell), ``a :: b`` in prose: a bare ``::`` next to a type-like word is code.
_CODE_AFTER_BARE = re.compile(r"\s*[A-Z(\[{]")


def ipv6_ok(raw: str) -> bool:
    """``raw`` (zone id and prefix length allowed) is an IPv6 address ``ipaddress`` accepts."""
    addr, _, prefix = raw.partition("/")
    if prefix and int(prefix) > 128:
        return False
    addr = addr.split("%", 1)[0]
    try:
        ipaddress.IPv6Address(addr)
    except ValueError:
        return False
    return True


class IpRecognizer(_RegexRecognizer):
    """IPv4 (octets checked, not a version number) and IPv6 in every form (validated by ``ipaddress``).

    Code is what an IPv6 pattern mostly meets on the web: ``std::vector`` has non-hex letters,
    ``a::b`` and ``dead::beef`` no digit (both dropped); a bare ``::`` (the unspecified address)
    counts only inside brackets, with a prefix length, or after an address word (``bind to ::``),
    never before a type name (Haskell's ``f :: Int``).
    """

    ENTITY = "IP_ADDRESS"
    # IPv4 may be followed by a port (``10.0.0.5:5432``), never by more address-like text
    CANDIDATE = re.compile(
        rf"(?<![\w.:])(?:{_IPV4})(?:/\d{{1,2}}(?!\d))?(?!\w|\.\d|:(?!\d{{1,5}}(?!\w)))|{_IPV6}"
    )

    def score(self, text: str, m: re.Match[str]) -> tuple[float, int, int] | None:
        raw = m.group()
        if ":" not in raw:
            if _VERSION_BEFORE.search(_context_before(text, m.start(), 12)):
                return None
            return STRONG, m.start(), m.end()
        if not ipv6_ok(raw):
            return None
        addr = raw.split("%", 1)[0].split("/", 1)[0]
        if addr == "::":
            start = m.start()
            bracketed = start > 0 and text[start - 1] == "[" and text[m.end() : m.end() + 1] == "]"
            if not (bracketed or "/" in raw or "%" in raw):
                if _CODE_AFTER_BARE.match(text, m.end()) or not _IP_CONTEXT.search(
                    _context_before(text, start, self.context_chars)
                ):
                    return None
        elif not any(c.isdigit() for c in addr):
            return None
        return STRONG, m.start(), m.end()


# --- phone numbers ------------------------------------------------------------------------------

# A run of digits with single separators (space, dot, dash, slash, parentheses), an optional "+",
# and an optional extension. Never across a line break.
_PHONE = re.compile(
    r"(?<![\w+.\-/:])(?:\(?\+|\()?\d(?:(?:[ .\-/]|\)[ .\-/]?|[ .\-/]?\()?\d){5,17}"
    r"(?:\s?(?:x|ext\.?|#)\s?\d{1,5})?(?![\w/]|[.,\-:]\d)"
)
_NANP = re.compile(
    r"(?:(?:\+?1|001)[ .\-]?)?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[.\-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?"
)
# A North American number glued to the word before it ("is415-555-0132", a lost space): the
# dashed or dotted xxx-xxx-xxxx shape is distinctive enough to take after lower-case letters.
_GLUED_NANP = re.compile(r"(?<=[a-z])(?<![a-z]\d)\d{3}([.\-])\d{3}\1\d{4}(?![\w\-/]|[.,]\d)")
# A country code written without "+" before a North American-shaped number ("91-415-555-0132").
_CC_NANP = re.compile(r"\d{1,3}[ .\-]\(?\d{3}\)?[ .\-]\d{3}[.\-]\d{4}")
_EXTENSION = re.compile(r"\s?(?:x|ext\.?|#)\s?\d{1,5}$")
_DATE_LIKE = re.compile(
    r"\d{4}[\-./]\d{1,2}[\-./]\d{1,2}"  # 2024-03-01
    r"|\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4}"  # 01.03.2024, 3/1/24
    r"|(?:1[5-9]|20)\d\d ?[\-–/] ?(?:(?:1[5-9]|20)\d\d|\d\d)"  # 2019-2020, 2019/20
    r"|\d{5}-\d{4}"  # US ZIP+4
)
_PHONE_CONTEXT = re.compile(
    r"phone|tel\b|tel\.|telephone|mobile|\bcell|\bfax|\bcall|contact|reach|\btext|sms|whatsapp|message"
    r"|office|\bdesk|answering|registered|\bdial|hotline|landline|\bnumber|\bmob\b|\bph\b|\bm:|\bt:|\bp:"
    r"|telefon|téléphone|teléfono"
)
# A digit group shaped like a large count ("12 345 678", "1.234.567") is a phone only when a word
# that means a phone is near; "number" alone ("a number of 1 234 567 visitors") is not enough.
_THOUSANDS = re.compile(r"\d{1,3}(?:[ .]\d{3})+")
_COUNT_WORDS = re.compile(r"\bnumber|\btext")
_ISBN_BEFORE = re.compile(r"isbn[\w\- ]{0,4}:?\s*$")


def _digit_count(s: str) -> int:
    return sum(c.isdigit() for c in s)


class PhoneRecognizer(_RegexRecognizer):
    """Phone numbers of any country.

    Strong, without context: ``+CC ...`` numbers that ``phonenumbers`` says are possible, and North
    American ``(xxx) xxx-xxxx`` / ``xxx-xxx-xxxx`` forms. Everything else (``780 6326``,
    ``72 128 827``, ``0341 8387176``) is too much like a count, a price or a page range on its own,
    so it needs a phone context word (``phone``, ``call me``, ``fax``, ``mobile``...) shortly before
    it on the same or the previous line, or right after it (``085 175 7641-Office``).
    """

    ENTITY = "PHONE_NUMBER"
    CANDIDATE = _PHONE

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        out = super().analyze(text, entities, nlp_artifacts)
        out.extend(
            RecognizerResult(self.ENTITY, m.start(), m.end(), STRONG) for m in _GLUED_NANP.finditer(text)
        )
        return out

    def score(self, text: str, m: re.Match[str]) -> tuple[float, int, int] | None:
        raw = m.group()
        start, end = m.start(), m.end()
        if raw.startswith("(") and ")" not in raw:
            raw, start = raw[1:], start + 1
        core = _EXTENSION.sub("", raw)
        n = _digit_count(core)
        if n < 7 or n > 15 or _DATE_LIKE.fullmatch(core) or raw.count("(") != raw.count(")"):
            return None
        if core.lstrip("(").startswith("+"):
            try:
                if phonenumbers.is_possible_number(phonenumbers.parse(core.replace("(+", "+", 1), None)):
                    return STRONG, start, end
            except phonenumbers.NumberParseException:
                pass
            # not a number phonenumbers knows: judge it by context like any other digit group
        if _ISBN_BEFORE.search(_context_before(text, start, 16)):
            return None
        if _NANP.fullmatch(raw) or _CC_NANP.fullmatch(core):
            return STRONG, start, end
        before = _context_before(text, start, self.context_chars)
        # context on this line or the one before it (a label on its own line: "Phone:\n780 6326")
        lines = before.split("\n")
        near = "\n".join(lines[-2:])
        after = _context_after(text, end, 12).split("\n", 1)[0]
        hit = _PHONE_CONTEXT.search(near) or _PHONE_CONTEXT.search(after)
        if hit and _THOUSANDS.fullmatch(core):
            # only a count-like word matched: look again without those words
            hit = any(
                not _COUNT_WORDS.fullmatch(m.group())
                for part in (near, after)
                for m in _PHONE_CONTEXT.finditer(part)
            )
        if hit:
            return CONTEXT, start, end
        return WEAK, start, end


# --- email --------------------------------------------------------------------------------------


class OfflineEmailRecognizer(EmailRecognizer):
    """presidio's email pattern, with its domain check done by an offline ``tldextract``.

    The stock recognizer calls ``tldextract.extract``, whose default extractor downloads the public
    suffix list on first use; offline that hangs on DNS or fails. The extractor built here reads only
    the snapshot bundled with tldextract (no URLs, no cache directory).
    """

    # presidio's pattern, with the local part bounded to RFC 5321's 64 characters and anchored at
    # the start of a token: the stock ``\b[...]{0,}`` retries from every position of a long token
    # (quadratic: 60 ms on one 3,000-character base64 run), this one from its start only.
    _LOCAL = r"[\w!#$%&'*+\-/=?^`{|}~]"
    PATTERNS = [
        Pattern(
            "Email (bounded local part)",
            rf"(?<![\w.!#$%&'*+\-/=?^`{{|}}~]){_LOCAL}(?:[\w.!#$%&'*+\-/=?^`{{|}}~]{{0,62}}{_LOCAL})?"
            r"@\w+(?:-+\w+)*(?:\.\w+(?:-+\w+)*)+\b",
            0.5,
        )
    ]

    def __init__(self) -> None:
        super().__init__(patterns=self.PATTERNS, name="OfflineEmailRecognizer")
        self._extract: Any = None

    def load(self) -> None:
        import tldextract

        self._extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def validate_result(self, pattern_text: str) -> bool:
        if self._extract is None:
            self.load()
        return self._extract(pattern_text).fqdn != ""


def pattern_recognizers(context_chars: int) -> list[EntityRecognizer]:
    """Every recognizer the stage registers when no NER model is configured."""
    return [
        OfflineEmailRecognizer(),
        PhoneRecognizer(context_chars),
        CreditCardRecognizer(context_chars),
        IpRecognizer(context_chars),
        IbanRecognizer(context_chars),
        UsSsnRecognizer(context_chars),
        SecretRecognizer(),
        UrlCredentialRecognizer(),
    ]


# The entity types of the record contract (schemas/config.py) that our pattern recognizers detect.
# NER_ENTITIES is defined there too, so that the driver reads it without importing presidio.
PATTERN_ENTITIES: tuple[str, ...] = tuple(e for e in PII_ENTITIES if e not in NER_ENTITIES)
