"""The answer line: the value a question asks for (a figure, a date, a name, a place), taken
verbatim from the highlighted sentence of the first passage, and what other reports state for
the same subject (the conflict panel reads it).

Pure functions of an `Answer`: `answer_value` is the `answer` field of `reportqa ask --json`,
`answer_line` the line the chat shows above the passages. No value is guessed: a value is a
span of the report's own sentence, found by the shape of what was asked (a count with its
measure word, a rate, a sum of money, a date, a title in 《》, a person after his office).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .figures import asked_figure
from .query import content_bigrams
from .records import Answer, Hit
from .textnorm import to_simplified

# Measure words and units a count, a size or a sum ends with (simplified, longest first).
UNITS = sorted(
    """平方公里 平方千米 平方公尺 平方米 平方英里 立方米 公里 千米 公尺 公顷 公分 厘米 毫米 英尺 英里 英寸 海里 哩 万平方米
    万元 亿元 美元 美金 港元 港币 日元 欧元 英镑 韩元 元 小时 分钟 秒钟 秒 个月 周年 世纪 年 岁 度 米 亩 吨 公斤 千克 克 磅
    人次 人 名 位 所 个 项 家 批 次 场 期 部 种 门 倍 天 日 座 条 级 户 台 辆 册 本 届 节 周 间 套 处 例 件 支 张 首 篇 只
    头 匹 株 棵 块 枚 份 层 栋 幢 床 班 校 园 站 胜 股 领 集 章 卷 分 km cm mm kg m % ‰""".split(),
    key=len,
    reverse=True,
)  # fmt: skip
_UNIT = "(?:" + "|".join(map(re.escape, UNITS)) + ")(?![a-z])"  # a Latin unit is a word of its own (not the m of "more")
_CN = "零〇一二两三四五六七八九十百千万亿"
_NUM_AR = r"\d+(?:[.,]\d+)*"
_NUM_CN = rf"[{_CN}]+(?:点[零〇一二三四五六七八九]+)?"
_TAIL = r"\s*[余多几]?\s*[十百千万亿]*\s*[余多]?\s*"
# A figure: Arabic digits (unit optional), Chinese numerals (unit required: else 一 of 一流), an
# ordinal, a fraction or 百分之…; dates are spans of their own, kept apart from counts.
FIGURE = re.compile(
    rf"(?P<pct>百分之[{_CN}点]+|[{_CN}]+分之[{_CN}]+|{_NUM_AR}\s*[%‰])"
    rf"|(?P<ord>第(?:{_NUM_AR}|[{_CN}]+)\s*(?:{_UNIT})?)"
    rf"|(?P<date>(?:1[0-9]|20)\d{{2}}\s*年(?:\s*\d{{1,2}}\s*月)?(?:\s*\d{{1,2}}\s*日)?|\d{{1,2}}\s*月\s*\d{{1,2}}\s*日)"
    rf"|(?P<ar>{_NUM_AR}{_TAIL}(?:{_UNIT})?)"
    rf"|(?P<cn>{_NUM_CN}{_TAIL}(?:{_UNIT}))"
)  # fmt: skip
# What a "how long / high / big / heavy" question is answered in.
FAMILIES = {
    "length": (
        "公里 千米 公尺 公分 厘米 毫米 英尺 英里 英寸 海里 哩 米 km cm mm m",
        r"多长|多高|多深|多宽|多远|长度|高度|深度|宽度|距离|身高|体长|全长|海拔|\bhow (?:long|tall|high|far|deep)\b",
    ),
    "area": ("平方公里 平方千米 平方公尺 平方米 平方英里 万平方米 公顷 亩", r"面积|多大|\bhow (?:big|large)\b|\barea\b"),
    "weight": ("吨 公斤 千克 克 磅 kg", r"多重|体重|重量|\bhow heavy\b"),
    "time": ("小时 分钟 秒钟 秒 个月 周年 世纪 年 天 日 周", r"多久|多长时间|几年|多少年|多少天|持续|\bhow long\b"),
    "people": ("人次 人 名 位", r"多少人|几人|人数|人口|\bhow many (?:people|persons|teachers|students)\b"),
}
_FAMILY_ASKED = [(frozenset(units.split()), re.compile(asks, re.I)) for units, asks in FAMILIES.values()]
_QUESTION_UNIT = re.compile(rf"(?:多少|几|第几)\s*(?:[十百千万亿]+\s*)?({_UNIT})")
_ASKS_ORDINAL = re.compile(r"第几|第多少|排名多少|排第|\bwhat (?:rank|place|position)\b", re.I)
_ASKS_DATE = re.compile(
    r"(?:哪|什么)一?年(?!级)|何年|何时|什么时候|什么时间|什么日子|哪一?天|几月|几号|哪个月|日期"
    r"|\bwhen\b|\bwhat (?:year|date|day|month)\b|\bwhich (?:year|day|month)\b",
    re.I,
)  # fmt: skip
_ASKS_NAME = re.compile(
    r"是谁|谁|叫什么|什么名字|名称|什么文件|什么方案|什么政策|什么计划|什么办法|什么意见|什么规定|哪份|哪部|哪所|哪家|哪位"
    r"|\bwho\b|\bwhat is the name\b|\bwhich document\b",
    re.I,
)  # fmt: skip
_ASKS_PLACE = re.compile(r"哪里|在哪|何处|何地|什么地方|哪个(?:县|区|市|省|地方|城市|学校)|\bwhere\b", re.I)
_TITLE = re.compile(r"《[^《》\n]{2,60}》(?:《[^《》\n]{2,60}》)*")
_OFFICE = "书记|副书记|局长|副局长|主任|副主任|校长|副校长|市长|副市长|县长|区长|院长|主席|部长|厅长|处长|科长|会长|理事长|董事长"
_PERSON = re.compile(rf"(?:{_OFFICE})\s*([\u4e00-\u9fff]{{2,3}}?)(?=[，,、。；（(作主出表强指说在为代率同与和等]|$)")
_PLACE = re.compile(
    r"(?:在|于|位于|地处)([\u4e00-\u9fff]{2,12}?(?:省|市|县|区|镇|乡|村|街道|学校|中学|小学|大学|一中|二中|三中|会场|中心|广场))"
)
_DATE_KINDS = frozenset({"date"})
FIGURE_KINDS = frozenset({"figure", "rate", "money"})
WINDOW = 16  # characters each side of a value read for its subject


@dataclass(frozen=True)
class Value:
    """A value found in a sentence: its text as written, its span there, the kind and the unit."""

    text: str
    start: int
    end: int
    kind: str  # figure, rate, money, ordinal, date, name, place
    unit: str = ""
    subject: frozenset[str] = frozenset()  # the question's content bigrams found around it

    @property
    def key(self) -> str:
        """What two reports compare: the value folded (script, width, spaces, thousands commas)."""
        return re.sub(r"[\s,]", "", fold(self.text))


@dataclass(frozen=True)
class Stated:
    """One value as the reports state it: the value and the passages (ranks, 1-based) stating it."""

    value: Value
    ranks: tuple[int, ...]
    hits: tuple[Hit, ...]


@dataclass(frozen=True)
class AnswerLine:
    """What the chat shows above the passages: the first passage's value, and where reports state
    another value of the same kind for the same subject, each of them with its passages."""

    kind: str
    stated: tuple[Stated, ...]  # the first passage's value first

    @property
    def value(self) -> str:
        return self.stated[0].value.text

    @property
    def conflict(self) -> bool:
        """Reports state different values: two or more, from passages of two or more reports."""
        docs = [{h.doc.id for h in s.hits} for s in self.stated]
        return any(a != b or len(a) > 1 for i, a in enumerate(docs) for b in docs[i + 1 :])


@lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """`text` folded character by character (NFKC, simplified, lower case), so that spans keep their offsets."""
    return "".join(_fold_char(c) for c in text)


@lru_cache(maxsize=8192)
def _fold_char(c: str) -> str:
    n = to_simplified(unicodedata.normalize("NFKC", c)).lower()
    return n if len(n) == 1 else c.lower()


@lru_cache(maxsize=4096)
def asked_kind(question: str) -> str | None:
    """The kind of value `question` asks for: rate, money, figure, ordinal, date, name or place; None for others."""
    q = fold(question or "")
    if _ASKS_DATE.search(q):
        return "date"
    if _ASKS_ORDINAL.search(q):
        return "ordinal"
    figure = asked_figure(question or "")
    if figure in ("rate", "money"):
        # a question asking two things ("资金有多少，占全省比例是多少"): the one asked first
        from .figures import _ASKS_MONEY, _ASKS_RATE

        first = {k: m.start() for k, p in (("rate", _ASKS_RATE), ("money", _ASKS_MONEY)) if (m := p.search(q))}
        money = re.search(r"(?:资金|经费|钱|费用|金额)[^，,？?。]{0,4}(?:多少|几)", q)
        if money:
            first["money"] = min(first.get("money", money.start()), money.start())
        return min(first, key=first.get) if first else figure
    if figure:
        return figure
    if _ASKS_NAME.search(q):
        return "name"
    if _ASKS_PLACE.search(q):
        return "place"
    return None


def question_unit(question: str) -> str:
    """The measure word after 多少/几 ("多少所" -> 所), "" when the question names none."""
    m = _QUESTION_UNIT.search(fold(question or ""))
    return m.group(1) if m else ""


def unit_family(question: str) -> frozenset[str]:
    """The units a "how long / high / big / heavy / many people" question is answered in (empty for others)."""
    q = fold(question or "")
    out: frozenset[str] = frozenset()
    for units, asks in _FAMILY_ASKED:
        if asks.search(q):
            out |= units
    return out


def _unit_of(text: str) -> str:
    for u in UNITS:
        if text.endswith(u):
            return u
    return ""


@lru_cache(maxsize=8192)
def candidates(sentence: str, kind: str) -> tuple[Value, ...]:
    """Every value of `kind` the sentence holds, in order (spans of `sentence`); memoised, like
    `fold`: the same passages' sentences come back question after question."""
    folded = fold(sentence)
    out: list[Value] = []
    if kind in FIGURE_KINDS or kind in ("ordinal", "date"):
        for m in FIGURE.finditer(folded):
            group = m.lastgroup
            s, e = m.span()
            while e > s and folded[e - 1].isspace():
                e -= 1
            text = sentence[s:e]
            unit = _unit_of(folded[s:e])
            if group == "date":
                if kind == "date":
                    out.append(Value(text, s, e, "date", unit))
                continue
            if kind == "date":
                continue
            if group == "ord":
                vkind = "ordinal"
            elif group == "pct":
                vkind = "rate"
            elif unit.endswith(("元", "美金", "港币")) or (unit == "" and re.search(r"[万亿]$", folded[s:e]) and kind == "money"):
                vkind = "money"
            else:
                vkind = "figure"
            if group == "ar" and not unit and not re.search(r"[万亿余多]", folded[s:e]):
                # a bare number: a count only when nothing better is there (a code, a page, a year)
                vkind = "bare"
            out.append(Value(text, s, e, vkind, unit))
    elif kind == "name":
        out += [Value(sentence[m.start() : m.end()], m.start(), m.end(), "name") for m in _TITLE.finditer(sentence)]
        out += [Value(m.group(1), m.start(1), m.end(1), "name") for m in _PERSON.finditer(folded)]
        out = [Value(sentence[v.start : v.end], v.start, v.end, v.kind) for v in out]
    elif kind == "place":
        out += [Value(sentence[m.start(1) : m.end(1)], m.start(1), m.end(1), "place") for m in _PLACE.finditer(folded)]
    return tuple(out)


def _fits(v: Value, kind: str) -> int:
    """How well a value's kind fits the kind asked: 2 exactly, 1 acceptable, 0 not at all."""
    if v.kind == kind:
        return 2
    if kind == "figure":
        return {"money": 1, "rate": 1, "bare": 1}.get(v.kind, 0)
    if kind == "money":
        return 1 if v.kind == "bare" else 0
    if kind == "rate":
        return 0
    if kind == "ordinal":
        return 0
    return 0


# Measure words that count the same things: a count of teachers in 名 answers "how many 人".
UNIT_CLASSES = (frozenset("人名位"), frozenset("所校园"), frozenset("个项家"), frozenset("次场期届"), frozenset("种门类"))
_COUNTED_AFTER = re.compile(rf"(?:多少|几)\s*(?:{_UNIT})?\s*(?:的)?([\u4e00-\u9fff]{{2,8}})")
_COUNTED_BEFORE = re.compile(r"([\u4e00-\u9fff]{2,8}?)(?:大概|大约|一共|总共|共|约|都|还)?(?:有|是|为|达到?)?(?:多少|几)")


def _same_unit(a: str, b: str) -> bool:
    return a == b or any(a in c and b in c for c in UNIT_CLASSES)


def _counts_other(v: Value, unit: str, family: frozenset[str]) -> bool:
    """`v` counts something else than the question: both name a measure word of `UNIT_CLASSES`
    (people, schools, items, events, kinds), of two classes, neither the generic 个: "11所" does not
    answer "多少人". Other units (天 and 日, 间 and 座, a misread 百分比) are left to the score."""
    if "个" in (unit, v.unit) or v.unit in family:
        return False
    a = next((c for c in UNIT_CLASSES if unit in c), None) if len(unit) == 1 else None
    b = next((c for c in UNIT_CLASSES if v.unit in c), None) if len(v.unit) == 1 else None
    return a is not None and b is not None and a != b


def counted(question: str) -> frozenset[str]:
    """Bigrams of what a question counts: the words after 多少所 ("多少所学校" -> 学校) or, when
    nothing follows, before 有多少 ("学生大概有多少" -> 学生)."""
    q = fold(question or "")
    m = _COUNTED_AFTER.search(q)
    text = m.group(1) if m else ""
    if not text:
        m = _COUNTED_BEFORE.search(q)
        text = m.group(1)[-4:] if m else ""
    return content_bigrams(text) if text else frozenset()


@lru_cache(maxsize=4096)
def subject_grams(question: str, sentence: str = "") -> frozenset[str]:
    """The question's content bigrams; for an English question, those of its CC-CEDICT terms
    that the sentence uses (its own words are no Chinese bigrams)."""
    grams = content_bigrams(question)
    from .translate import is_english

    if sentence and is_english(question):
        from .keyword import tokenize
        from .translate import translate

        terms = translate(question, {t: 1.0 for t in tokenize(sentence)})
        grams = grams | frozenset(g for t in terms for g in content_bigrams(t))
    return grams


def _is_article(v: Value) -> bool:
    """一个, 一种, 一座: "a", seldom the figure asked."""
    return bool(re.fullmatch(r"一\s*\S?", fold(v.text)))


def extract(sentence: str, question: str, kind: str | None = None) -> Value | None:
    """The value of `sentence` answering `question`: of the kind asked, with the question's measure
    word if it names one (none counting something else), the one whose neighbourhood holds most of
    the question's words (those naming what is counted most)."""
    kind = kind or asked_kind(question)
    if not kind or not sentence:
        return None
    cands = candidates(sentence, kind)
    if not cands:
        return None
    unit = question_unit(question) if kind in FIGURE_KINDS or kind == "ordinal" else ""
    family = unit_family(question) if kind in FIGURE_KINDS else frozenset()
    grams = subject_grams(question, sentence)
    what = counted(question)
    folded = fold(sentence)
    best, best_score = None, -1e9
    for v in cands:
        fit = _fits(v, kind)
        if not fit:
            continue
        near = _nearness(folded, v.start, v.end, grams | what)
        subject = frozenset(near)
        score = 3.0 * fit + sum(near.values()) + 2.0 * sum(w for g, w in near.items() if g in what)
        if unit:
            score += 4.0 if v.unit == unit else 3.0 if _same_unit(v.unit, unit) else 0.0
        if v.unit in family:
            score += 3.0
        if _is_article(v) or _counts_other(v, unit, family):
            continue  # 一个, 一种: "a", not the figure asked; 11所 for 多少人: not what is counted
        if score > best_score:
            best, best_score = Value(v.text, v.start, v.end, "figure" if v.kind == "bare" else v.kind, v.unit, subject), score
    return best


_CLAUSE_END = "，,；;。！？!?、：:\n"
_QUOTES = "“”‘’\"'《》「」『』【】()（）"


def _nearness(folded: str, start: int, end: int, grams) -> dict[str, float]:
    """Each question bigram near the span `start:end`, weighted by how near it stands (1 adjacent,
    1/2 five characters off): in full within the span's clause (between commas), a third outside
    it but within `WINDOW` characters. Quotation marks and brackets are read through."""
    a = start
    while a > 0 and folded[a - 1] not in _CLAUSE_END:
        a -= 1
    b = end
    while b < len(folded) and folded[b] not in _CLAUSE_END:
        b += 1
    lo, hi = max(0, min(a, start - WINDOW)), min(len(folded), max(b, end + WINDOW))
    keep = [i for i in range(lo, hi) if folded[i] not in _QUOTES]
    text = "".join(folded[i] for i in keep)
    out: dict[str, float] = {}
    for g in grams:
        i = text.find(g)
        while i >= 0:
            gs, ge = keep[i], keep[i + 1] + 1
            d = start - ge if ge <= start else (gs - end if gs >= end else 0)
            inside = gs >= a and ge <= b
            if inside or d <= WINDOW:
                w = (1.0 if inside else 1 / 3) / (1.0 + max(d, 0) / 5.0)
                out[g] = max(out.get(g, 0.0), w)
            i = text.find(g, i + 1)
    return out


def _sentence(hit: Hit) -> tuple[str, int]:
    s, e = hit.highlight
    t = hit.chunk.text
    if not 0 <= s < e <= len(t):
        return "", 0
    return t[s:e], s


def value_of(hit: Hit, question: str, kind: str | None = None) -> Value | None:
    """The value the highlighted sentence of `hit` gives for `question`, its span in the passage."""
    sentence, offset = _sentence(hit)
    v = extract(sentence, question, kind)
    if v is None:
        return None
    return Value(v.text, v.start + offset, v.end + offset, v.kind, v.unit, v.subject)


def _same_subject(first: Value, other: Value, what: frozenset[str]) -> bool:
    """Another report's value speaks of the same thing: the same kind and unit, what the question
    counts stands next to both, and most of the question's words around the first stand around it."""
    if first.kind != other.kind or not _same_unit(first.unit, other.unit) or _is_article(first) or _is_article(other):
        return False
    counted_first = len(what & first.subject)
    if len(what & first.subject & other.subject) < max(min(2, counted_first), -(-counted_first // 2)):
        return False
    return len(first.subject & other.subject) >= max(2, -(-len(first.subject) // 2))


def answer_line(answer: Answer, max_passages: int = 5) -> AnswerLine | None:
    """The answer line of `answer`: None when it is not answered, when the question asks for no
    figure, date, name or place, or when the first passage's highlighted sentence holds none."""
    if not answer.answered or not answer.hits:
        return None
    kind = asked_kind(answer.searched)
    if kind is None:
        return None
    first = value_of(answer.hits[0], answer.searched, kind)
    if first is None:
        return None
    what = counted(answer.searched)
    city = answer.hits[0].doc.city
    years = [y for y in re.findall(r"(?:19|20)\d{2}", answer.searched) if y in _sentence(answer.hits[0])[0]]
    groups: dict[str, list[tuple[int, Hit, Value]]] = {first.key: [(1, answer.hits[0], first)]}
    for r, h in enumerate(answer.hits[1:max_passages], 2):
        if h.doc.city != city:  # another city's figure is another fact, not a disagreement
            continue
        v = value_of(h, answer.searched, kind)
        if v is None or not (v.key == first.key or _same_subject(first, v, what)):
            continue
        if any(y not in _sentence(h)[0] for y in years):  # "2021年以来": another year's figure is another fact
            continue
        groups.setdefault(v.key, []).append((r, h, v))
    stated = tuple(Stated(items[0][2], tuple(r for r, _, _ in items), tuple(h for _, h, _ in items)) for items in groups.values())
    return AnswerLine(first.kind, stated)


def answer_value(answer: Answer) -> str | None:
    """The `answer` field of `reportqa ask --json`: the value, verbatim, of the first passage's
    highlighted sentence; None when there is no answer line."""
    line = answer_line(answer)
    return line.value if line else None
