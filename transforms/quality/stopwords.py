"""Short stop-word lists for Gopher's "has at least N stop words" rule, per language.

Gopher's rule uses eight English function words (the, be, to, of, and, that, have, with). Tuning
the rule to the kept languages means using the same kind of words for each of them; these lists
are the most frequent function words of each language, written for this project. When the
language is not known (language stage off) the union of all lists is used, so that the rule still
separates prose from word salad in any of these languages. A detected language with no list here
gets an empty set, and the quality stage skips the rule for it rather than reject all of it.
"""

from __future__ import annotations

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the be to of and that have with".split()),
    "de": frozenset("der die das und ist nicht zu den von mit sich auf für ein eine".split()),
    "fr": frozenset("le la les de des et est un une que dans pour pas du".split()),
    "es": frozenset("el la los las de y que en un una es por con para del".split()),
    "it": frozenset("il la di che e un una per non sono con del della".split()),
    "pt": frozenset("o a os as de e que em um uma para com não do da".split()),
    "nl": frozenset("de het een en van dat is niet op te met voor".split()),
}
ALL_STOP_WORDS: frozenset[str] = frozenset().union(*STOP_WORDS.values())


def stop_words_for(lang: str | None) -> frozenset[str]:
    """The stop words of ``lang``: the union of all lists when unknown, empty when not listed."""
    if lang is None:
        return ALL_STOP_WORDS
    return STOP_WORDS.get(lang, frozenset())
