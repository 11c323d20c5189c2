"""The PII scrubber: cheap gates, bounded windows, one presidio AnalyzerEngine, typed placeholders.

Running presidio on every whole document costs tens of milliseconds per web page. Most text cannot
hold an entity at all, so each entity has a *gate*: a cheap regex for the shape any match must have
(seven digits with separators for a phone, an ``@`` for an email, ...). Only the text around gate
hits is analysed: each hit opens a window of ``pii.window_chars`` on either side, snapped to
whitespace; overlapping windows merge, and the analyzer runs on each merged window asking only for
the entities whose gates fired inside it. Windows of a batch are joined into one analyzer call,
separated by a sentinel that the recognizers' context lookups never cross. A window never exceeds
``pii.max_chunk_chars``: longer regions (and whole documents, for NER) are cut into chunks that
overlap by ``2 * window_chars``; a span that touches a chunk's inner edge is dropped there and found
whole in the neighbouring chunk, so nothing is lost at chunk borders.

Overlapping spans are resolved by score, then length (longest wins), then position; each survivor
is replaced by the placeholder (default ``<ENTITY>``). Spans inside URLs are left alone (digits in a
URL path are ids, not phone numbers), except emails.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

from corpusforge.schemas.config import PiiConfig
from corpusforge.transforms.base import WorkerState
from corpusforge.transforms.pii.recognizers import (
    NER_ENTITIES,
    SEPARATOR,
    pattern_recognizers,
)
from corpusforge.transforms.pii.secrets import CREDENTIAL_GATE, PEM_PATTERN, secret_gate_hits

log = logging.getLogger(__name__)

# Per-entity gates: the minimal shape of any match. A document where no gate fires skips presidio.
# Scanning a page once per entity with a regex that starts with a character class is what costs,
# so the digit-shaped entities share one scan: runs of digits and separators (``_DIGIT_RUN``), and
# each entity's gate is tried only on those short runs. Emails and IPv6 gates start from a literal
# ("@", ":"), which the regex engine finds fast; IBANs from a digit pair after two letters.
_DIGIT_RUN = re.compile(r"\d[\d .\-/()+]{5,}\d")
DIGIT_GATES: dict[str, re.Pattern[str]] = {
    "PHONE_NUMBER": re.compile(r"\d(?:(?:[ .\-/]|\)[ .\-/]?|[ .\-/]?\()?\d){6}"),
    "CREDIT_CARD": re.compile(r"\d(?:[ \-]?\d){11}"),
    "IP_ADDRESS": re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d"),
    "US_SSN": re.compile(r"\d{3}[\- .]?\d{2}[\- .]?\d{4}"),
}
_EMAIL_GATE = re.compile(
    r"@(?<=[\w.+\-]@)(?=[\w\-])"
)  # "@"-led: a literal scan, not a class at every position
# IPv6: two colons around a hex group, or a trailing/bare "::" ("2001:db8::", "::") not before a
# name (``std::vector`` opens no window).
_IPV6_GATE = re.compile(r":(?:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]|:(?![\w:]))")  # ":"-led: a fast literal scan
# Two letters, two digits: led by the digits (the letters checked behind them), which scans 1.5x
# faster than either a letter-led pattern or a digit pair checked for letters in Python.
_IBAN_GATE = re.compile(r"[0-9][0-9](?<=[A-Za-z][A-Za-z][0-9][0-9])[ \-]?[A-Za-z0-9]{4}")


def _digit_runs_regex(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _DIGIT_RUN.finditer(text)]


def _iban_hits_regex(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _IBAN_GATE.finditer(text)]


# The (start, end) of every match of the two class-led gates: by one compiled walk each where
# ``_gates.c`` was built (the same spans, see there; the regexes stop at every digit of a page),
# by the regexes otherwise.
try:
    from corpusforge.transforms.pii._gates import digit_runs as _digit_runs
    from corpusforge.transforms.pii._gates import iban_hits as _iban_hits
except ImportError:  # pragma: no cover - depends on the build
    _digit_runs, _iban_hits = _digit_runs_regex, _iban_hits_regex
# Literal-led gates for the non-digit entities (secrets need a key prefix or a secret-like name
# before "=" or ":"; URL credentials need "://...@").
GATED_ENTITIES = frozenset({*DIGIT_GATES, "SECRET", "CREDENTIAL", "EMAIL_ADDRESS", "IBAN_CODE"})
# Any gate needs a digit, an "@", "=" or ":": one scan rules most prose out.
_ANY_GATE = re.compile(r"[\d@=:]")
# A URL: scheme or www., an optional bracketed IPv6 host, then anything up to a space or delimiter.
# Found from its "://" or "www." (literal scans), the scheme read backwards from there.
_URL_MARK = re.compile(r"://|www\.")
_URL_BODY = re.compile(r"(?:[^\s<>\"')\[\]/]*\[[0-9A-Za-z:.%]+\])?[^\s<>\"')\]]*")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
# Entities replaced inside URLs too when ``skip_urls`` is on: they are never an id or a version.
URL_ENTITIES = frozenset({"EMAIL_ADDRESS", "SECRET", "CREDENTIAL"})


def ner_model_available(model: str | None) -> bool:
    """Whether ``model`` names an installed spaCy package or a model directory (no download)."""
    if not model:
        return False
    import spacy

    return bool(spacy.util.is_package(model) or (Path(model) / "meta.json").is_file())


@dataclass(frozen=True)
class Span:
    entity: str
    start: int
    end: int
    score: float


@dataclass
class ScrubResult:
    text: str
    counts: dict[str, int] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    analyzed_chars: int = 0  # characters of this document the analyzer saw (0: every gate said no)


class _NoContextEnhancer(ContextAwareEnhancer):
    """presidio's lemma enhancer needs lemmas a blank pipeline has not; our recognizers read context
    from the raw text themselves, so the engine-level pass is a no-op (and saves its cost)."""

    def __init__(self) -> None:
        super().__init__(
            context_similarity_factor=0.0,
            min_score_with_context_similarity=0.0,
            context_prefix_count=0,
            context_suffix_count=0,
        )

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):  # noqa: D102
        return raw_results


def _token_end(text: str, start: int, end: int, limit: int = 8000) -> int:
    """Where the token a gate hit starts ends: a key or a JWT is longer than the gate's literal,
    and a PEM block spans lines, so the window must cover all of it (never half a secret)."""
    if text.startswith("-----BEGIN", start):
        block = PEM_PATTERN.match(text, start)
        return block.end() if block else end
    ws = _WHITESPACE.search(text, end, min(len(text), end + limit))
    return ws.start() if ws else min(len(text), end + limit)


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every URL in ``text``: ``scheme://...`` or ``www....``."""
    out: list[tuple[int, int]] = []
    for m in _URL_MARK.finditer(text):
        start = m.start()
        if m.group() == "://":
            while start > 0 and text[start - 1] in _SCHEME_CHARS:
                start -= 1
            if start == m.start() or not text[start].isalpha():
                continue
        if out and start < out[-1][1]:
            continue  # "www." inside a URL already found
        out.append((start, _URL_BODY.match(text, m.end()).end()))
    return out


_WHITESPACE = re.compile(r"\s")


def resolve_overlaps(spans: Sequence[Span]) -> list[Span]:
    """Merge overlapping spans into one span covering them all, typed by the best of them.

    Keeping only one of two overlapping candidates leaves the other's uncovered part in the text
    (``2001:db8::192.168.1.1`` becoming ``<IP_ADDRESS>.168.1.1``): a detected span is never cut.
    The type is the highest-scoring span's, then the longest's, then the earliest's. An e-mail
    starting inside a URL credential (``user:pw@host.com`` reads as ``pw@host.com``) is dropped
    first, so the host is kept.
    """
    creds = [s for s in spans if s.entity == "CREDENTIAL"]
    if creds:
        spans = [
            s
            for s in spans
            if not (s.entity == "EMAIL_ADDRESS" and any(c.start <= s.start < c.end for c in creds))
        ]
    merged: list[list[Span]] = []
    end = -1
    for s in sorted(spans, key=lambda s: (s.start, s.end)):
        if merged and s.start < end:
            merged[-1].append(s)
            end = max(end, s.end)
        else:
            merged.append([s])
            end = s.end
    out = []
    for group in merged:
        best = min(group, key=lambda s: (-s.score, -(s.end - s.start), s.start, s.entity))
        out.append(Span(best.entity, group[0].start, max(s.end for s in group), best.score))
    return out


def replace_spans(text: str, spans: Sequence[Span], placeholder: str) -> str:
    """Replace non-overlapping, sorted spans with ``placeholder.format(entity=...)``."""
    parts, pos = [], 0
    for s in spans:
        parts.append(text[pos : s.start])
        parts.append(placeholder.format(entity=s.entity))
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


def _snap_left(text: str, i: int, slack: int = 40) -> int:
    """Move a window start back to just after whitespace so no token is cut in half."""
    if i <= 0:
        return 0
    lo = max(0, i - slack)
    for j in range(i, lo, -1):
        if text[j - 1].isspace():
            return j
    return lo


def _snap_right(text: str, i: int, slack: int = 40) -> int:
    n = len(text)
    if i >= n:
        return n
    hi = min(n, i + slack)
    for j in range(i, hi):
        if text[j].isspace():
            return j
    return hi


def url_host(text: str, start: int, end: int) -> tuple[int, int]:
    """The host part of the URL at ``text[start:end]``: after the scheme and any ``user:pw@``, up to
    the port, path, query or fragment; a bracketed IPv6 host with its brackets."""
    i = text.find("://", start, end)
    i = start if i < 0 else i + 3
    stop = end
    for ch in "/?#":
        j = text.find(ch, i, stop)
        if j >= 0:
            stop = j
    at = text.rfind("@", i, stop)
    if at >= 0:
        i = at + 1
    if text.startswith("[", i):
        close = text.find("]", i, stop)
        return i, (close + 1 if close >= 0 else stop)
    colon = text.find(":", i, stop)
    return i, (colon if colon >= 0 else stop)


def _outside_urls(text: str, spans: list[Span]) -> list[Span]:
    """``skip_urls``: drop spans inside URLs (digits in paths are ids, versions, dates), except the
    types that are never ids (:data:`URL_ENTITIES`) and IP literals that are the URL's host."""
    urls = url_spans(text)
    if not urls:
        return spans
    kept = []
    for s in spans:
        url = next(((a, b) for a, b in urls if a <= s.start and s.end <= b), None)
        if url is None or s.entity in URL_ENTITIES:
            kept.append(s)
        elif s.entity == "IP_ADDRESS":
            h0, h1 = url_host(text, *url)
            if h0 <= s.start and s.end <= h1:
                kept.append(s)
    return kept


@dataclass
class _Window:
    doc: int
    start: int
    end: int
    entities: set[str]


class PiiScrubber(WorkerState):
    """Pure scrubbing logic (no Beam): ``ready()`` once, then ``scrub_batch(texts)``. The engine is
    per worker, never pickled with the graph (see :class:`WorkerState`)."""

    per_worker = ("analyzer", "ner_entities")
    analyzer: AnalyzerEngine | None = None
    ner_entities: tuple[str, ...] = ()  # the NER entities the built engine detects

    def __init__(self, cfg: PiiConfig | None = None) -> None:
        """Entities, thresholds and window sizes come from ``cfg`` (the defaults of :class:`PiiConfig`);
        ``cfg.entities`` is used as given (the stage resolves the NER entities before, see
        :func:`~corpusforge.transforms.pii.stage.resolve_entities`)."""
        cfg = cfg or PiiConfig()
        self.entities = tuple(cfg.entities)
        self.score_threshold = cfg.score_threshold
        self.placeholder = cfg.placeholder
        self.ner_model = cfg.ner_model
        self.window_chars = cfg.window_chars
        self.max_chunk_chars = max(cfg.max_chunk_chars, 4 * cfg.window_chars)
        self.context_chars = cfg.context_chars
        self.skip_urls = cfg.skip_urls

    # -- engine -----------------------------------------------------------------------------------

    def setup(self) -> None:
        """Build the AnalyzerEngine: pattern recognizers on a no-op NLP engine (nothing downloads),
        or a spaCy engine plus presidio's SpacyRecognizer when an installed NER model is named."""
        registry = RecognizerRegistry(supported_languages=["en"])
        for rec in pattern_recognizers(self.context_chars):
            rec.load()
            registry.add_recognizer(rec)
        wanted_ner = tuple(e for e in self.entities if e in NER_ENTITIES)
        nlp_engine = None
        if self.ner_model and wanted_ner:
            nlp_engine = self._spacy_engine(self.ner_model)
        if nlp_engine is not None:
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer

            registry.add_recognizer(
                SpacyRecognizer(supported_language="en", supported_entities=list(wanted_ner))
            )
            self.ner_entities = wanted_ner
            if "ner" not in nlp_engine.nlp["en"].pipe_names:
                log.warning(
                    "pii: spaCy model %r has no 'ner' component: it will find no %s",
                    self.ner_model,
                    ", ".join(wanted_ner),
                )
        else:
            from presidio_analyzer.nlp_engine import NoOpNlpEngine

            nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
            nlp_engine.load()
            if wanted_ner or self.ner_model:
                log.info(
                    "pii: no installed spaCy NER model (pii.ner_model=%r): %s detection is off",
                    self.ner_model,
                    ", ".join(wanted_ner or NER_ENTITIES),
                )
        self.analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=nlp_engine,
            supported_languages=["en"],
            context_aware_enhancer=_NoContextEnhancer(),
        )
        self._pattern_entities = frozenset(e for e in self.entities if e in GATED_ENTITIES)

    @staticmethod
    def _spacy_engine(model: str):
        """A spaCy NLP engine for ``model`` if that package is installed; never downloads."""
        if not ner_model_available(model):
            return None
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        provider = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": "en", "model_name": model}],
            }
        )
        return provider.create_engine()

    # -- windows ----------------------------------------------------------------------------------

    def _windows(self, doc: int, text: str) -> list[_Window]:
        """Merged windows around gate hits, each with the entities whose gates fired in it."""
        if not _ANY_GATE.search(text) and not self.ner_entities:
            return []
        w = self.window_chars
        hits = self._gate_hits(text)
        if self.ner_entities and text.strip():
            hits.extend((0, len(text), e) for e in self.ner_entities)
        if not hits:
            return []
        hits.sort()
        merged: list[_Window] = []
        for s, e, ent in hits:
            lo, hi = max(0, s - w), min(len(text), e + w)
            if merged and lo <= merged[-1].end:
                last = merged[-1]
                last.end = max(last.end, hi)
                last.entities.add(ent)
            else:
                merged.append(_Window(doc, lo, hi, {ent}))
        out = []
        for win in merged:
            out.extend(self._chunks(doc, text, win))
        return out

    def _gate_hits(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, entity) for every place a gate fires."""
        ents = self._pattern_entities
        hits: list[tuple[int, int, str]] = []
        if "EMAIL_ADDRESS" in ents and "@" in text:
            hits.extend((m.start(), m.end(), "EMAIL_ADDRESS") for m in _EMAIL_GATE.finditer(text))
        digit_gates = [(e, g) for e, g in DIGIT_GATES.items() if e in ents]
        if digit_gates:
            for start, end in _digit_runs(text):
                run = text[start:end]
                for ent, gate in digit_gates:
                    if gate.search(run):
                        hits.append((start, end, ent))
        if "IP_ADDRESS" in ents and ":" in text:
            hits.extend((m.start(), m.end(), "IP_ADDRESS") for m in _IPV6_GATE.finditer(text))
        if "SECRET" in ents:
            hits.extend((s, _token_end(text, s, e), "SECRET") for s, e in secret_gate_hits(text))
        if "CREDENTIAL" in ents and "://" in text:
            hits.extend((m.start(), m.end(), "CREDENTIAL") for m in CREDENTIAL_GATE.finditer(text))
        if "IBAN_CODE" in ents:
            hits.extend((s - 2, e, "IBAN_CODE") for s, e in _iban_hits(text))
        return hits

    def _chunks(self, doc: int, text: str, win: _Window) -> list[_Window]:
        """Cut a window into chunks of at most ``max_chunk_chars`` overlapping by ``2 * window_chars``."""
        start, end = _snap_left(text, win.start), _snap_right(text, win.end)
        size, overlap = self.max_chunk_chars, 2 * self.window_chars
        if end - start <= size:
            return [_Window(doc, start, end, win.entities)]
        out, pos = [], start
        while True:
            stop = min(end, pos + size)
            if stop < end:
                snapped = _snap_left(text, stop)  # end the chunk at whitespace when one is near
                if snapped > pos + overlap + 64:
                    stop = snapped
            out.append(_Window(doc, pos, stop, win.entities))
            if stop >= end:
                return out
            pos = max(pos + 1, _snap_left(text, stop - overlap))

    # -- analysis ---------------------------------------------------------------------------------

    def _analyze(self, texts: Sequence[str], windows: list[_Window]) -> list[list[Span]]:
        """Run the analyzer over windows, grouped by entity set, one call per group and batch."""
        found: list[list[Span]] = [[] for _ in texts]
        groups: dict[tuple[str, ...], list[_Window]] = {}
        for win in windows:
            groups.setdefault(tuple(sorted(win.entities)), []).append(win)
        for ents, wins in groups.items():
            # batch the windows into one text; a separator line keeps their context apart
            sep = "\n" + SEPARATOR + "\n"
            pieces, offsets, pos = [], [], 0
            for win in wins:
                piece = texts[win.doc][win.start : win.end]
                pieces.append(piece)
                offsets.append(pos)
                pos += len(piece) + len(sep)
            joined = sep.join(pieces)
            results: list[RecognizerResult] = self.analyzer.analyze(
                text=joined, language="en", entities=list(ents), score_threshold=self.score_threshold
            )
            results.sort(key=lambda r: r.start)
            k = 0
            for r in results:
                while k + 1 < len(offsets) and offsets[k + 1] <= r.start:
                    k += 1
                win = wins[k]
                local_s, local_e = r.start - offsets[k], r.end - offsets[k]
                if local_e > win.end - win.start:  # spans a separator: not a real match
                    continue
                text = texts[win.doc]
                # drop spans touching an inner chunk edge: the overlapping chunk holds them whole
                if (local_s == 0 and win.start > 0 and not text[win.start - 1].isspace()) or (
                    local_e == win.end - win.start and win.end < len(text) and not text[win.end].isspace()
                ):
                    continue
                found[win.doc].append(Span(r.entity_type, win.start + local_s, win.start + local_e, r.score))
        return found

    def scrub_batch(self, texts: Sequence[str]) -> list[ScrubResult]:
        self.ready()
        windows: list[_Window] = []
        for i, text in enumerate(texts):
            windows.extend(self._windows(i, text))
        found = self._analyze(texts, windows) if windows else [[] for _ in texts]
        analyzed = [0] * len(texts)
        for win in windows:
            analyzed[win.doc] += win.end - win.start
        out = []
        for text, spans, seen in zip(texts, found, analyzed, strict=True):
            if not spans:
                out.append(ScrubResult(text, analyzed_chars=seen))
                continue
            spans = list(set(spans))
            if self.skip_urls:
                spans = _outside_urls(text, spans)
            spans = resolve_overlaps(spans)
            counts: dict[str, int] = {}
            for s in spans:
                counts[s.entity] = counts.get(s.entity, 0) + 1
            out.append(ScrubResult(replace_spans(text, spans, self.placeholder), counts, spans, seen))
        return out

    def may_hold_pii(self, text: str) -> bool:
        """Whether any gate could fire on ``text`` (a cheap pre-check for short side fields)."""
        return bool(_ANY_GATE.search(text))

    def scrub(self, text: str) -> ScrubResult:
        return self.scrub_batch([text])[0]
