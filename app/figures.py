"""What kind of figure a question asks for, and what kinds a sentence holds.

A rate's value (多少, 几 or 百分之几 right after the rate word: not 率领 "lead", not "what
does the rate depend on") is answered by a percentage, fraction or ratio, a sum of money by
an amount, any other "how many" by a number.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .textnorm import normalise

KINDS = ("rate", "money", "figure")

_RATE_WORD = r"(?:率|比例|比率|比重|占比|百分比)"
_ASKS_RATE = re.compile(
    rf"{_RATE_WORD}(?:大约|约|大概)?(?:是|为|达|达到|有)?(?:多少|几|百分之几|多高|多大)|多少的?{_RATE_WORD}|百分之几|百分之多少|几成"
    r"|\bwhat (?:percentage|percent|share|proportion|fraction) of\b"
    r"|\bwhat(?: is|'s| was| are| were) (?:the )?(?:[\w'-]+ ){0,5}(?:rate|ratio|share|proportion|percentage)\b",
    re.I,
)  # fmt: skip
_ASKS_MONEY = re.compile(
    r"多少(?:钱|[万亿]?(?:美|港|日|欧)?元(?![素件]))|(?:金额|费用|经费|学费|资金)(?:是|为|有|达|共)?多少"
    r"|\bhow much money\b|\bhow many yuan\b",
    re.I,
)  # fmt: skip
_ASKS_FIGURE = re.compile(
    r"多少|(?<![这近前些好十])几(?![乎何经度])|(?<![许很诸众])多(?:大(?!程度)|高|长|久|远)|\bhow (?:many|much|long|big|large|old)\b",
    re.I,
)  # fmt: skip
_NUMBER = r"(?:\d[\d.,]*|[零〇一二两三四五六七八九十百千万亿]+)"
FIGURES = {
    "rate": re.compile(r"\d\s*[%‰]|[百千]?分之|\d\s*成|[一二两三四五六七八九]成|\d\s*[:∶比]\s*\d|一半|过半|半数"
                       r"|率(?:为|是|达到?|约为?|仅为?|超过)?\s*\d"),
    "money": re.compile(rf"{_NUMBER}\s*[余多几]?\s*[十百千万亿]*\s*[余多]?\s*(?:元|美元|港元|日元|欧元|韩元|英镑|镑|美金|港币|新台币)"
                        r"|(?:人民币|\$|¥)\s*\d|\d\s*[余多]?\s*[万亿](?![名人所个家项位])"),
    "figure": re.compile(r"\d|第[零〇一二两三四五六七八九十百]+|数[十百千万]|几十|十几"
                         r"|[零〇一二两三四五六七八九十百千万]+\s*[余多几]?\s*[所个名人位项家批次场期部种门倍天年元万亿岁座条级户亩米台辆册本届节周月]"),
}  # fmt: skip


@lru_cache(maxsize=4096)
def asked_figure(question: str) -> str | None:
    """`rate`, `money` or `figure` when the question asks for one (of the question as written,
    simplified), else None."""
    q = normalise(question)
    for kind, pattern in (("rate", _ASKS_RATE), ("money", _ASKS_MONEY), ("figure", _ASKS_FIGURE)):
        if pattern.search(q):
            return kind
    return None


def figure_kinds(norm: str) -> frozenset[str]:
    """The kinds of figure a normalised sentence holds."""
    return frozenset(k for k, p in FIGURES.items() if p.search(norm))
