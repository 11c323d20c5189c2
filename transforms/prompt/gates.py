"""Necessary literal gates of prompt patterns, derived from the parsed regex itself.

Most documents hold no prompt scaffolding at all, yet one alternation of every pattern costs about
1 ms per 6 KB page because the regex engine tries each branch at each position. A *gate* is a
conjunction of clauses, each a set of literal strings one of which every match of the pattern must
contain. A substring search (glibc's ``memmem`` via ``_gate_search.c``, or ``in`` where that is
not built) is far cheaper than a regex scan, so a pattern
whose gate fails on a text cannot match anywhere in it and can be left out of the scan: a branch
that matches nowhere never changes which branch wins at any position, so the counts are the same.

Gates are derived by walking the pattern's parse tree (``re._parser``, ``sre_parse`` before 3.11),
never written by hand, so a user's ``extra_patterns`` get them too. A pattern with no derivable
gate is always scanned. Literals under ``re.IGNORECASE`` are kept only when ASCII and checked
against :func:`fold` of the text, whose per-character mapping sends every code point that
``re.IGNORECASE`` matches to an ASCII character onto that character's lowercase (tested
exhaustively).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

try:  # Python 3.11+
    from re import _constants as _c
    from re import _parser as _p
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

# A gate literal: (string, folded). A folded string is ASCII lowercase and is looked for in fold(text).
Lit = tuple[str, bool]
Clause = frozenset[Lit]

_MAX_SET = 64  # largest set of exact strings or alternatives kept (beyond it: not usable)
_MAX_CLAUSES = 2  # clauses per gate: a third is rarely reached and costs set-up
_LONG_ENOUGH = 20  # a run of literals this long is not extended further
_MAX_IN = 8  # a character class of at most this many single characters counts as exact
_ZERO_WIDTH = frozenset({_c.AT, _c.ASSERT, _c.ASSERT_NOT})
_REPEATS = frozenset(
    {_c.MAX_REPEAT, _c.MIN_REPEAT} | ({_c.POSSESSIVE_REPEAT} if hasattr(_c, "POSSESSIVE_REPEAT") else set())
)

# The only code points that re.IGNORECASE matches to an ASCII letter other than the letter's two
# cases: U+0130 (dotted capital I), U+0131 (dotless i), U+017F (long s) and U+212A (Kelvin sign).
# tests/ check every code point against re itself.
_HAZARDS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}


def fold(text: str) -> bytes:
    """The text's case fold as UTF-8 bytes: every character that ``re.IGNORECASE`` matches to an
    ASCII character ``c`` becomes the byte of ``c.lower()``; other characters keep their own bytes.

    Bytes because ``bytes.lower()`` (ASCII only, which is all a gate needs) costs a tenth of
    ``str.lower()`` on non-ASCII text, and UTF-8 never forms an ASCII byte from other characters.
    Lone surrogates (possible in JSON input) pass through as non-ASCII bytes."""
    if not text.isascii():
        for ch, rep in _HAZARDS.items():
            if ch in text:  # one-character searches: a memchr each
                text = text.replace(ch, rep)
    return text.encode("utf-8", "surrogatepass").lower()


@dataclass(frozen=True)
class _Info:
    """What a parse-tree node tells about its matches: ``exact`` is the finite set of strings it can
    match (None: unknown or too many); ``clauses`` are sets one member of which every match contains."""

    exact: frozenset[Lit] | None
    clauses: tuple[Clause, ...]


_EMPTY = frozenset({("", False)})


def _concat(a: Lit, b: Lit) -> Lit | None:
    """The literal of ``a`` then ``b``; None when a folded half would need a non-ASCII fold."""
    (sa, fa), (sb, fb) = a, b
    if fa == fb:
        return (sa + sb, fa)
    s = sa + sb
    return (s.lower(), True) if s.isascii() else None


def _cross(xs: frozenset[Lit], ys: frozenset[Lit]) -> frozenset[Lit] | None:
    if len(xs) * len(ys) > _MAX_SET:
        return None
    out = set()
    for x in xs:
        for y in ys:
            z = _concat(x, y)
            if z is None:
                return None
            out.add(z)
    return frozenset(out)


def _minimal(clause: frozenset[Lit]) -> Clause:
    """The clause without alternatives that contain another one (finding them finds the other)."""
    return frozenset(a for a in clause if not any(b != a and _implies(a, b) for b in clause))


def _usable(clause: frozenset[Lit] | None) -> bool:
    return clause is not None and 0 < len(clause) <= _MAX_SET and all(s for s, _ in clause)


def _literal(code: int, ignorecase: bool) -> frozenset[Lit] | None:
    ch = chr(code)
    if not ignorecase or (ch.isascii() and not ch.isalpha()):  # re matches it exactly
        return frozenset({(ch, False)})
    return frozenset({(ch.lower(), True)}) if ch.isascii() else None  # non-ASCII: no gate


def _class(items: list, ignorecase: bool) -> frozenset[Lit] | None:
    """A character class of a few plain characters, as exact one-character strings."""
    if len(items) > _MAX_IN or any(op is not _c.LITERAL for op, _ in items):
        return None
    out: set[Lit] = set()
    for _, code in items:
        lit = _literal(code, ignorecase)
        if lit is None:
            return None
        out |= lit
    return frozenset(out)


def _best(clauses: tuple[Clause, ...]) -> Clause | None:
    return min(clauses, key=_order) if clauses else None


def _node(op, av, flags: int) -> _Info:
    ic = bool(flags & re.IGNORECASE)
    if op is _c.LITERAL:
        ex = _literal(av, ic)
        return _Info(ex, (ex,) if ex else ())
    if op is _c.IN:
        ex = _class(av, ic)
        return _Info(ex, ())
    if op in _ZERO_WIDTH:
        return _Info(_EMPTY, ())
    if op is _c.SUBPATTERN:
        _group, add, delete, sub = av
        return _seq(sub, (flags | add) & ~delete)
    if hasattr(_c, "ATOMIC_GROUP") and op is _c.ATOMIC_GROUP:
        return _seq(av, flags)
    if op is _c.BRANCH:
        alts = [_seq(sub, flags) for sub in av[1]]
        exact: frozenset[Lit] | None = frozenset()
        for a in alts:
            exact = None if exact is None or a.exact is None else exact | a.exact
        if exact is not None and len(exact) > _MAX_SET:
            exact = None
        # a match of the branch is a match of one alternative: it contains one of their best literals
        best = [_best(a.clauses) for a in alts]
        union: frozenset[Lit] | None = None
        if all(b is not None for b in best):
            union = _minimal(frozenset().union(*best))  # type: ignore[arg-type]
        return _Info(exact, (union,) if _usable(union) else ())
    if op in _REPEATS:
        lo, hi, sub = av
        inner = _seq(sub, flags)
        if lo == 0:
            exact = None
            if hi == 1 and inner.exact is not None and len(inner.exact) < _MAX_SET:
                exact = inner.exact | _EMPTY
            return _Info(exact, ())
        clauses = list(inner.clauses)
        exact = None
        if inner.exact is not None:
            run: frozenset[Lit] | None = _EMPTY
            for _ in range(min(lo, 16)):  # the first `lo` repetitions are contiguous
                run = _cross(run, inner.exact) if run is not None else None
            if lo == hi and lo <= 16:
                exact = run
            if _usable(run):
                clauses.append(_minimal(run))  # type: ignore[arg-type]
        return _Info(exact, tuple(clauses))
    return _Info(None, ())  # ANY, NOT_LITERAL, CATEGORY, group references, anything unknown


def _seq(items, flags: int) -> _Info:
    """A sequence: every run of consecutive exact items gives literals (their cross product) that a
    match contains; the items' own clauses hold too."""
    infos = [_node(op, av, flags) for op, av in items]
    clauses: list[Clause] = [c for info in infos for c in info.clauses]
    for i in range(len(infos)):
        run: frozenset[Lit] | None = _EMPTY
        for info in infos[i:]:
            if info.exact is None:
                break
            run = _cross(run, info.exact)  # type: ignore[arg-type]
            if run is None:
                break
            if _usable(run):
                clauses.append(_minimal(run) if len(run) > 1 else run)
                if min(len(s) for s, _ in run) >= _LONG_ENOUGH:
                    break  # longer runs from this start are no better gates
    whole: frozenset[Lit] | None = _EMPTY
    for info in infos:
        whole = _cross(whole, info.exact) if whole is not None and info.exact is not None else None
    return _Info(whole, tuple(clauses))


try:  # glibc's memmem over a clause's literals in one call (setup.py; optional)
    from corpusforge.transforms.prompt._gate_search import any_in as _any_in_c
except ImportError:  # pragma: no cover - built without a C compiler
    _any_in_c = None


def any_in_python(haystack: bytes, literals: tuple[bytes, ...]) -> bool:
    """The pure-Python clause test (the compiled ``any_in`` gives the same answers)."""
    return any(lit in haystack for lit in literals)


any_in = _any_in_c if _any_in_c is not None else any_in_python


def encoded(text: str) -> bytes:
    """The UTF-8 bytes raw-text clauses are searched in (a UTF-8 substring is a text substring)."""
    return text.encode("utf-8", "surrogatepass")


def fold_encoded(text: str, raw: bytes) -> bytes:
    """:func:`fold` of ``text`` given its :func:`encoded` bytes (no second encoding when the text
    holds none of the four hazards, nearly always)."""
    if not text.isascii() and any(ch in text for ch in _HAZARDS):
        return fold(text)
    return raw.lower()


def _tester(clause: Clause) -> tuple[bool, tuple[bytes, ...]]:
    """How one clause is tested: (on the folded bytes?, its literals as UTF-8 bytes)."""
    folded = any(f for _, f in clause)
    # a raw literal in a folded clause: the text holds it, so the fold holds its fold
    return folded, tuple(sorted({fold(s) if folded else encoded(s) for s, _ in clause}))


@dataclass(frozen=True)
class Gate:
    """Clauses that must all pass for a pattern to be able to match; no clauses: always active.
    Each clause is a set of literals one of which every match contains; cheapest clauses first."""

    clauses: tuple[Clause, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_testers", tuple(_tester(c) for c in self.clauses))

    @property
    def needs_fold(self) -> bool:
        return any(f for f, _ in self._testers)  # type: ignore[attr-defined]

    def passes(self, raw: bytes, folded: bytes | None) -> bool:
        """``raw`` is :func:`encoded` text, ``folded`` its :func:`fold` (None when not needed)."""
        for on_fold, literals in self._testers:  # type: ignore[attr-defined]
            if not any_in(folded if on_fold else raw, literals):  # type: ignore[arg-type]
                return False
        return True


@functools.lru_cache(maxsize=1024)
def derive_gate(pattern: str, flags: int = re.MULTILINE) -> Gate:
    """The gate of one pattern as compiled with ``flags`` (inline flags included): of every clause
    found (and the substring common to each clause's literals), the ``_MAX_CLAUSES`` with the
    lowest expected cost, cheapest first. Any choice gives the same counts; this one is fast."""
    parsed = _p.parse(pattern, flags)
    info = _seq(list(parsed), parsed.state.flags)
    found = set(info.clauses)
    found |= {c for c in map(_common, list(found)) if c is not None}
    found = {c for c in found if not _rare_chars(c)}  # those come as covers of what is kept
    kept: list[Clause] = []
    for c in sorted(found, key=_order):
        if len(kept) == _MAX_CLAUSES:
            break
        if not any(_entails(k, c) for k in kept):
            # a weaker clause stays only as a cheaper first test
            kept = [k for k in kept if not (_entails(c, k) and _rank(c) <= _rank(k))] + [c]
    covers = sorted({c for c in map(_rare_cover, kept) if c is not None and c not in kept}, key=_order)
    return Gate(tuple(covers[:1] + sorted(kept, key=_order)))


def _order(clause: Clause) -> tuple:
    """Cheapest first; of equal cost, the longest shortest literal (rarer); then a fixed order."""
    return (_rank(clause), -min(len(s) for s, _ in clause), sorted(clause))


def _entails(a: Clause, b: Clause) -> bool:
    """Whether clause ``a`` passing guarantees ``b`` passes (then ``b`` adds nothing after ``a``)."""
    return all(any(_implies(x, y) for y in b) for x in a)


# Characters rare in prose: a clause of them is a few memchr scans, so it goes first when it exists.
_RARE = frozenset("<>[]{}|#*_\\^~`@$%&=+")


def _rare_cover(clause: Clause) -> Clause | None:
    """A weaker clause of single rare characters, one of which each literal contains (the one most
    literals share first), or None when some literal holds no rare character."""
    sets = [frozenset(s) & _RARE for s, _ in clause]
    if not all(sets):
        return None
    chosen: set[str] = set()
    for chars in sets:
        if not chars & chosen:
            chosen.add(max(sorted(chars), key=lambda ch: sum(ch in other for other in sets)))
    return frozenset((ch, False) for ch in chosen)  # uncased characters: the raw text is enough


def _rare_chars(clause: Clause) -> bool:
    return all(len(s) == 1 and s in _RARE for s, _ in clause)


def _rank(clause: Clause) -> float:
    """Lower is better: the searches the clause costs (one memmem, or `in`, per literal), weighted
    by how common its shortest literal is likely to be: short literals are found in most texts and
    remove little, a single ordinary character (':', ' ') almost never removes anything."""
    if _rare_chars(clause):
        return 0.05 * len(clause)  # memchr scans, tested first
    shortest = min(len(s) for s, _ in clause)
    weight = 1 if shortest >= 6 else 3 if shortest >= 4 else 6 if shortest >= 2 else 100
    return 0.25 * len(clause) * weight


def _common(clause: Clause) -> Clause | None:
    """The longest substring (of 2 or more characters) shared by every literal of the clause."""
    if len({f for _, f in clause}) != 1:
        return None
    strings = sorted((s for s, _ in clause), key=len)
    folded = next(iter(clause))[1]
    first = strings[0]
    for n in range(len(first), 1, -1):
        for i in range(len(first) - n + 1):
            sub = first[i : i + n]
            if all(sub in s for s in strings[1:]):
                return frozenset({(sub, folded)})
    return None


def _implies(big: Lit, small: Lit) -> bool:
    """Whether finding ``big`` guarantees finding ``small`` (a substring under the same fold)."""
    (sb, fb), (ss, fs) = big, small
    if fb == fs:
        return ss in sb
    return fs and sb.isascii() and ss in sb.lower()
