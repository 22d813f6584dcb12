"""English on the document side: each passage's words glossed in English (CC-CEDICT), so an
English question meets a Chinese passage word for word ("preschool enrollment rate" meets
学前教育 毛入园率) without inverting the dictionary for every phrase of the question.

Both sides go through `stem`, a light suffix folding: what matters is that a question's word
and a gloss's word fold to the same key, not linguistic accuracy.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .words import BRITISH, ENGLISH_STOP

_WORD = re.compile(r"[a-z]+")
# Glosses that are not meanings: cross-references, classifiers, surnames, abbreviations.
_NOT_A_MEANING = re.compile(r"^(?:cl:|variant of|old variant|see |surname|abbr\.|used in|also written|also pr\.|erhua|classifier for|measure word)", re.I)


def stem(word: str) -> str:
    """Lower case, US spelling, and a few plural and verb endings folded."""
    w = word.lower()
    for uk, us in BRITISH.items():
        if uk in w:
            w = w.replace(uk, us)
    for suf, rep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suf) and len(w) > len(suf) + 3 and not (suf == "s" and w.endswith(("ss", "us", "is"))):
            return w[: -len(suf)] + rep
    return w


def english_words(text: str) -> list[str]:
    """The stemmed content words of an English text (a question)."""
    return [stem(w) for w in _WORD.findall(text.lower().replace("u\u0308", "u").replace("ü", "u")) if w not in ENGLISH_STOP and len(w) > 1]


@lru_cache(maxsize=1)
def chinese_to_english() -> dict[str, tuple[str, ...]]:
    """Simplified headword -> the stemmed English words of its glosses (each once)."""
    table: dict[str, dict[str, None]] = {}
    for simp, glosses in _entries():
        words = table.setdefault(simp, {})
        for g in glosses:
            g = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", g)
            if _NOT_A_MEANING.match(g.strip()):
                continue
            for w in english_words(g):
                words[w] = None
    return {k: tuple(v) for k, v in table.items() if v}


def _entries():
    from .translate import cedict_entries

    return cedict_entries()


def gloss_tokens(tokens: list[str]) -> list[str]:
    """English keyword tokens of a Chinese text, from its keyword `tokens` (`keyword.tokenize`):
    the gloss words of each token."""
    table = chinese_to_english()
    out: list[str] = []
    for t in tokens:
        out.extend(table.get(t, ()))
    return out
