"""Recognizers for secrets (``SECRET``) and for credentials in URLs (``CREDENTIAL``).

Web and code crawls carry API keys, tokens and passwords; a model that memorises one leaks it.
Two kinds of evidence are used:

* **Documented formats**: a service's key has a fixed literal prefix and alphabet (AWS ``AKIA...``,
  GitHub ``ghp_...``, GitLab ``glpat-...``, Slack ``xoxb-...``, Stripe ``sk_live_...``, Google
  ``AIza...``, JWTs ``eyJ...eyJ...``, PEM ``-----BEGIN ... PRIVATE KEY-----`` blocks). These are
  taken wherever they appear, inside URLs included.
* **Assignments**: a value assigned to a name that says it is secret (``password = "..."``,
  ``"api_key": "..."``, ``TOKEN=...``) is taken only when it looks random (long enough, mixed
  character classes, high Shannon entropy) and is not a placeholder (``YOUR_API_KEY``, ``****``,
  ``${TOKEN}``, ``os.environ[...]``). Ordinary prose (``the token is required``), hex commit ids,
  hashes in URLs and base64 images carry no such name and are left alone.

Both are cheap to gate: every candidate starts from a literal (a prefix, or a secret-like name
followed by ``=`` or ``:``) that :func:`secret_gate_hits` finds before any recognizer runs.
"""

from __future__ import annotations

import math
import re
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

SECRET_SCORE = 0.95
CREDENTIAL_SCORE = 0.99  # above an e-mail's score: ``user:pw@host`` is a credential first

# Documented token formats: (name, regex). Each starts with a literal, so a scan is cheap.
_FORMATS: tuple[tuple[str, str], ...] = (
    (
        "aws_access_key_id",
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z2-7]{16}(?![A-Za-z0-9])",
    ),
    ("github_token", r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])"),
    ("github_fine_grained", r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,255}(?![A-Za-z0-9_])"),
    (
        "gitlab_token",
        r"(?<![A-Za-z0-9_\-])gl(?:pat|dt|rt|ptt|cbt|ft|soat)-[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-])",
    ),
    ("slack_token", r"(?<![A-Za-z0-9])xox[abposre]-(?:[0-9]+-)*[A-Za-z0-9\-]{10,}(?![A-Za-z0-9\-])"),
    ("slack_webhook", r"hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"),
    ("stripe_key", r"(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}(?![A-Za-z0-9_])"),
    ("google_api_key", r"(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])"),
    (
        "jwt",
        r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}(?![A-Za-z0-9_\-])",
    ),
    (
        "pem_private_key",
        r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]{0,8000}?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"|(?:\s*[A-Za-z0-9+/=:\-,]{16,}){1,200})",
    ),
)
FORMAT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((n, re.compile(p)) for n, p in _FORMATS)
PEM_PATTERN = FORMAT_PATTERNS[-1][1]

# A secret-like name, then an assignment. The name may be part of a longer identifier
# (``DB_PASSWORD``, ``stripeApiKey``, ``aws_secret_access_key``); quotes around either side.
_NAMES = (
    r"pass(?:word|wd|phrase)?|pwd|secret|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?key"
    r"|private[_\-]?key|token|credentials?|client[_\-]?secret"
)
ASSIGNMENT = re.compile(
    rf"(?i)(?<![A-Za-z])[\w.\-]{{0,40}}(?:{_NAMES})[\w\-]{{0,20}}['\"]?\s{{0,3}}(?:=|:|=>|:=)\s{{0,3}}"
    r"(?:[rbu]?['\"]|`)?(?P<value>[A-Za-z0-9!#$%&*+\-./:=?@^_|~\\]{8,200})(?![^\s'\"`,;<>(){}\[\]])"
)
# What opens a window for the SECRET recognizer: a format's literal prefix, or "=" / ":" right
# after a word ending like a secret-like name (``...wd``, ``...rd``, ``...ey``, ``...en``...),
# checked in full by :data:`ASSIGNMENT` before it counts. Each gate starts from a literal, which
# the regex engine finds at memchr speed; one case-insensitive alternation of the names scanned
# over every page cost more than the rest of the stage.
_NAME_END = r"(?i:wd|rd|ey|en|et|ss|se|al|ls)"
# (a substring the text must hold, or "" when the regex starts with a literal itself; the gate)
FORMAT_GATES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (lit, re.compile(p))
    for lit, p in (
        ("", r"A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|PKA|Iza)"),
        ("eyJ", r"eyJ"),
        ("_", r"gh[pousr]_|github_pat_|_(?:live|test)_"),
        ("", r"gl(?:pat|dt|rt|ptt|cbt|ft|soat)-"),
        ("xox", r"xox[abposre]-"),
        ("hooks.slack", r"hooks\.slack"),
        ("-----BEGIN", r"-----BEGIN"),
    )
)
_VALUE_AFTER = re.compile(
    r"=?>?\s{0,3}(?:[rbu]?['\"]|`)?(?P<value>[A-Za-z0-9!#$%&*+\-./:=?@^_|~\\]{8,200})(?![^\s'\"`,;<>(){}\[\]])"
)
_NAME_BEFORE = re.compile(rf"(?i)(?:{_NAMES})[\w\-]{{0,20}}['\"]?\s?$")
# "=" and ":" scanned apart: each then starts with a literal (one "[=:]" class is five times slower)
ASSIGN_GATES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(rf"{op}(?:(?<={_NAME_END}{op})|(?<={_NAME_END}[\"']{op})|(?<={_NAME_END} {op}))")
    for op in "=:"
)


def secret_gate_hits(text: str) -> list[tuple[int, int]]:
    """Where a secret may be: format prefixes, and assignments whose value looks random."""
    hits = []
    for literal, gate in FORMAT_GATES:
        if not literal or literal in text:
            hits.extend((m.start(), m.end()) for m in gate.finditer(text))
    for m in (m for gate in ASSIGN_GATES for m in gate.finditer(text)):
        # cheapest test first: a value-shaped run right after the operator, then randomness, then
        # the whole name before it (most ":" after "...en" are prose: "then:", "seen: a")
        v = _VALUE_AFTER.match(text, m.end())
        if v is None or not looks_random(v.group("value").rstrip(".")):
            continue
        if _NAME_BEFORE.search(text, max(0, m.start() - 32), m.start()):
            hits.append((m.start(), v.end()))
    return hits


_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
# Placeholders and references, not secrets.
_PLACEHOLDER = re.compile(
    r"(?i)^(?:\$\{?|%|\{\{|<|\*|x{3}|\.{3})|your|example|changeme|placeholder|redacted|dummy|sample"
    r"|^(?:none|null|nil|true|false|undefined|required|optional|string|password|secret|token)$"
    r"|^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^[a-z]+(?:[_\-.][a-z]+)*$|^(?:os\.|env\.|process\.env|config\.|settings\.|self\.)"
)
# Long hex (commit ids, digests) is a hash far more often than a secret unless a name says so;
# under a secret-like name it still has to pass the entropy bar.
MIN_ENTROPY = 3.0  # bits per character; English words score ~2.5-3, random base62 of 16+ chars ~3.8+


def shannon_entropy(s: str) -> float:
    """Bits per character of ``s`` (the frequency distribution of its characters)."""
    n = len(s)
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_random(value: str) -> bool:
    """A value worth hiding: 8+ characters, two or more character classes, high entropy, no placeholder."""
    if len(value) < 8 or not value.isascii() or _PLACEHOLDER.search(value):
        return False
    classes = (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )
    if classes < 2:
        return False
    return shannon_entropy(value) >= min(MIN_ENTROPY, math.log2(len(value)) - 0.2)


class SecretRecognizer(EntityRecognizer):
    """``SECRET``: documented key formats anywhere, and random-looking values of secret-like names."""

    ENTITY = "SECRET"

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], supported_language="en", name="SecretRecognizer")

    def load(self) -> None:  # patterns are compiled at import
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        out = []
        for _, pattern in FORMAT_PATTERNS:
            out.extend(
                RecognizerResult(self.ENTITY, m.start(), m.end(), SECRET_SCORE)
                for m in pattern.finditer(text)
            )
        for m in FORMAT_PATTERNS[0][1].finditer(text):  # an AWS secret key printed beside its key id
            near = _AWS_SECRET.search(text, m.end(), min(len(text), m.end() + 120))
            if near and looks_random(near.group()):
                out.append(RecognizerResult(self.ENTITY, near.start(), near.end(), SECRET_SCORE - 0.05))
        for m in ASSIGNMENT.finditer(text):
            value = m.group("value").rstrip(".")
            if looks_random(value):
                start = m.start("value")
                out.append(RecognizerResult(self.ENTITY, start, start + len(value), SECRET_SCORE - 0.05))
        return out


# ``scheme://user:password@host``: the user and password are replaced, scheme and host stay.
URL_CREDENTIAL = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,15}://(?P<cred>[^\s/?#@:\[\]]+:[^\s/?#@]+)@[\w\[]"
)
CREDENTIAL_GATE = re.compile(r"://[^\s/?#@]{1,200}@")


class UrlCredentialRecognizer(EntityRecognizer):
    """``CREDENTIAL``: the ``user:password`` part of a URL's authority."""

    ENTITY = "CREDENTIAL"

    def __init__(self) -> None:
        super().__init__(
            supported_entities=[self.ENTITY], supported_language="en", name="UrlCredentialRecognizer"
        )

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        return [
            RecognizerResult(self.ENTITY, m.start("cred"), m.end("cred"), CREDENTIAL_SCORE)
            for m in URL_CREDENTIAL.finditer(text)
        ]
