"""Follow-up questions without a language model: "那吕梁呢？" after a question about 长治 is
searched as that question about 吕梁, visibly (`Resolution.searched` is what the search gets).

A message is a follow-up only by its shape: short, and elliptical (……呢, 那……, 还有……, "what about
…", "and in …") or anaphoric (它们, 这些, 其中, "具体是哪些？" with nothing of its own to ask about).
Anything else stands on its own and is searched exactly as typed. A follow-up is merged with the
previous turn, itself resolved first (the history is read left to right, so chains work):
- a place it names replaces the place of the previous question (in that question's language
  and script), a year replaces its year;
- a thing it names replaces the thing the previous question asks about (after or before its
  "多少/几/哪些/什么", or "how many …");
- a pronoun question gets the previous question's subject in front of it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from .textnorm import to_simplified
from .translate import is_english
from .words import CITY_ALIASES, OTHER_PLACES

MAX_TURNS = 20  # earlier turns read: a conversation drifts, and each turn is resolved again
MAX_CHARS = 16  # a Chinese follow-up is at most this long: longer messages carry their own subject
MAX_ASPECT = 12  # characters of the thing a "……呢" follow-up asks about
MAX_WORDS = 8  # words of an English follow-up

# ---- patterns. The word lists among them (markers, anaphors, measure words, fillers) belong in words.py;
# they are here until the integration, as this module was written without editing existing files.
_END_PUNCT = "？?。.！!~～…　 \t\n"
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_YEAR_ZH = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)年?")  # 2023年 as a Chinese follow-up says it
_CJK = re.compile(r"[\u3400-\u9fff]")
_HEAD = re.compile(r"^(?:那么|那在|那|还有|换成|换作|如果是|要是)")  # 那…… / 还有…… : "and …?"
_ANAPHOR = re.compile(r"它们|它|他们|她们|这些|那些|其中|这个|那个|这里|那里|那儿|这儿|这边|那边")
# What asks rather than says: "(有)多少所", "几个", "哪些", "什么" with their measure words.
_MEASURE = r"(?:人次|万人|平方米|[个所名人家项部册场种次位门条期批])"
_ASK_FIGURE = rf"(?:一共|总共|共|大约|大概)?(?:有|是|为)?(?:多少|几){_MEASURE}?+"  # possessive: 所 of 多少所 is no subject
_ASK_WHAT = rf"(?:有|是)?(?:哪些|哪几{_MEASURE}?+|哪{_MEASURE}|什么)"
_ASKS = re.compile(rf"{_ASK_FIGURE}|{_ASK_WHAT}|为什么|是谁|谁|吗|怎么样|怎样|咋样|如何|有没有|是否|在哪里?|哪里|哪儿")
# Words that say nothing about what is asked; a message left with nothing but these is elliptical.
_FILLER = re.compile(r"的|了|情况|方面|具体|分别|各自|都|还|又|也|是|有|在|呀|啊|吧|呢|一下|现在|目前|市|全")
_ASPECT_TRIM = re.compile(r"^(?:的|市|在)+|(?:的情况|情况|方面|的)+$")
# The previous question's subject: after its question word to the end, or before a final one.
_SUBJECT_AFTER = re.compile(rf"(?P<q>{_ASK_FIGURE}|{_ASK_WHAT})(?P<s>[^，,；;？?]*{_CJK.pattern}[^，,；;？?]*)$")
_TOPIC_DROP = re.compile(rf"{_ASK_FIGURE}|{_ASK_WHAT}|是谁|谁|有没有|是否|(?:的)?(?:情况)?(?:怎么样|怎样|如何)$|[吗呢]$")

_EN_TRIGGER = re.compile(
    r"^(?:(?:and|so|ok|okay)\s+)?(?:what|how)\s+about\s+(?P<x>.+)$|^(?:and|the\s+same\s+for|same\s+for)\s+(?P<y>.+)$", re.I
)
_EN_ASKS = re.compile(
    r"\b(?:how|what|which|who|whom|whose|when|where|why|is|are|was|were|do|does|did|has|have|had|can|could|will|would)\b", re.I
)
_EN_PRONOUN = re.compile(r"\b(?:they|them|these|those|it|its|their|ones)\b", re.I)
_EN_FILLER = re.compile(r"\b(?:in|for|at|of|about|the|city|'s)\b|'s\b", re.I)
_EN_HOW_MANY = re.compile(
    r"^(?P<h>how\s+(?:many|much)\s+)(?P<s>.+?)(?P<r>\s+(?:are|is|was|were|does|do|did|have|has|had|work|works|in|at)\b.*)$", re.I
)
_EN_POSSESSIVE = re.compile(r"^(?P<h>(?:what|which|who)(?:'s|\s+(?:is|are|was|were))\s+\S+'s\s+)(?P<s>.+)$", re.I)
_EN_OF = re.compile(
    r"^(?P<h>(?:what|which|who)(?:'s|\s+(?:is|are|was|were))\s+(?:the\s+)?)(?P<s>.+?)(?P<r>\s+(?:in|of|for|at)\s+.+)$", re.I
)


@dataclass(frozen=True)
class Resolution:
    """What a message is searched as: `searched` is `question` itself unless `rewritten`."""

    searched: str
    rewritten: bool = False
    kind: str = ""  # what was swapped: "city", "year", "aspect" (joined by "+"), or "pronoun"
    previous: str = ""  # the earlier question (as resolved) it was merged with


@dataclass(frozen=True)
class Place:
    """A place named in a text: its span and its key (the simplified name for a corpus city)."""

    key: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class FollowUp:
    """What an elliptical message brings to the previous question."""

    place: Place | None = None
    year: str = ""
    aspect: str = ""  # the thing asked about instead
    modifier: bool = False  # the aspect qualifies the old subject: "县级的呢" after "省级“平安校园”"
    pronoun: bool = False

    @property
    def kind(self) -> str:
        if self.pronoun:
            return "pronoun"
        return "+".join(k for k, v in (("city", self.place), ("year", self.year), ("aspect", self.aspect)) if v)


def resolve(question: str, history: list[str], known_cities: Iterable[str] = ()) -> Resolution:
    """`question` as it should be searched, given the earlier questions of the conversation
    (oldest first; only the last `MAX_TURNS` count). `known_cities` are the cities of the
    indexed reports (an added report's city is a place like ours). Raises TypeError when a
    history item is not a string."""
    if not isinstance(question, str):
        raise TypeError(f"question is {type(question).__name__}, not a string")
    for i, item in enumerate(history):
        if not isinstance(item, str):
            raise TypeError(f"history item {i} is {type(item).__name__}, not a string")
    places = _places_pattern(frozenset(c for c in known_cities if c))
    follow = _parse(question, places)
    if follow is None:
        return Resolution(question)
    previous = _previous(history[-MAX_TURNS:], places)
    if not previous:  # nothing to lean on: searched as typed
        return Resolution(question)
    return Resolution(_merge(previous, follow, question, places), True, follow.kind, previous)


def _previous(history: list[str], places: re.Pattern) -> str:
    """The last turn as resolved: each follow-up merged with the turn before it, in order."""
    previous = ""
    for item in history:
        text = item.strip()
        if not text:
            continue
        follow = _parse(text, places)
        if follow is None:
            previous = text
        elif previous:  # a follow-up with nothing before it names no subject to carry on
            previous = _merge(previous, follow, text, places)
    return previous


# ---- reading a message


def _parse(message: str, places: re.Pattern) -> FollowUp | None:
    """What an elliptical `message` asks for, or None when it stands on its own."""
    text = unicodedata.normalize("NFKC", message).strip().rstrip(_END_PUNCT).strip()
    if not text:
        return None
    if is_english(text) or _EN_TRIGGER.match(text):  # "What about 吕梁?" is English in shape
        follow = _english_followup(text, places)
        if follow or not _CJK.search(text):
            return follow
    return _chinese_followup(text, places)  # "那Xinzhou呢" is Chinese in shape


def _chinese_followup(text: str, places: re.Pattern) -> FollowUp | None:
    s = to_simplified(text)
    if len(s) > MAX_CHARS:
        return None
    ends_ne = s.endswith("呢")
    core = s[:-1] if ends_ne else s
    anaphor = bool(_ANAPHOR.search(core))
    core = _ANAPHOR.sub("", core)
    head = _HEAD.match(core)
    core = core[head.end() :] if head else core
    place = next(iter(_find_places(core, places)), None)
    years = _YEAR.findall(core)
    rest = _YEAR_ZH.sub("", places.sub("", core))
    asks = bool(_ASKS.search(rest))
    said = _FILLER.sub("", _ASKS.sub("", rest))  # what the message names besides place and year
    if (place or years) and not said:
        if ends_ne or head or asks:  # "那吕梁呢", "吕梁有多少" (a bare "吕梁" is a search of its own)
            return FollowUp(place=place, year=years[0] if years else "")
        return None
    if ends_ne or (head and head.group() not in ("那", "那么")):  # "专任教师呢", "还有小学", not "那好吧"
        if not said:
            return FollowUp(pronoun=True) if not (place or years) else None
        aspect = _ASPECT_TRIM.sub("", rest)
        if asks or len(aspect) > MAX_ASPECT:  # "那吕梁有多少所幼儿园呢": a whole question of its own
            return None
        return FollowUp(
            place=place, year=years[0] if years else "", aspect=_as_typed(aspect, s, text), modifier=rest.endswith("的")
        )
    if (anaphor or (asks and not said)) and not (place or years):  # "它们分别在哪里", "具体是哪些"
        return FollowUp(pronoun=True)
    return None


def _as_typed(piece: str, simplified: str, text: str) -> str:
    """`piece` of the simplified message in the message's own script (教職工 stays 教職工)."""
    at = simplified.find(piece)
    return text[at : at + len(piece)] if at >= 0 and len(simplified) == len(text) else piece


def _english_followup(text: str, places: re.Pattern) -> FollowUp | None:
    words = text.split()
    if len(words) > MAX_WORDS:
        return None
    m = _EN_TRIGGER.match(text)
    if m:
        x = m.group("x") or m.group("y")
        if _EN_ASKS.search(x):  # "and how many …": a question of its own
            return None
        place = next(iter(_find_places(x, places)), None)
        years = _YEAR.findall(x)
        rest = _EN_FILLER.sub(" ", _YEAR.sub(" ", places.sub(" ", x)))
        rest = " ".join(rest.split())
        if not rest and not (place or years):
            return None
        if _EN_PRONOUN.fullmatch(rest):  # "what about them?"
            return FollowUp(pronoun=True) if not (place or years) else None
        aspect = _strip_article(_YEAR.sub(" ", places.sub(" ", x))) if rest else ""
        return FollowUp(place=place, year=years[0] if years else "", aspect=aspect)
    if len(words) <= 6 and _EN_PRONOUN.search(text) and not _find_places(text, places) and not _YEAR.search(text):
        return FollowUp(pronoun=True)  # "Where are they?", "Which ones?"
    return None


def _strip_article(x: str) -> str:
    x = " ".join(x.split())
    x = re.sub(r"^(?:(?:in|for|at|of|about)\s+)?(?:the\s+)?", "", x, flags=re.I)
    return re.sub(r"\s+(?:in|for|at|of)$", "", x, flags=re.I).strip()


@lru_cache(maxsize=64)
def _places_pattern(known: frozenset[str]) -> re.Pattern:
    """Every place name we know, longest first: the corpus cities in all their spellings, the
    indexed reports' cities, and the other places a question might name."""
    names = {n for ns in CITY_ALIASES.values() for n in ns} | set(known) | set(OTHER_PLACES)
    return re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)), re.I)


def _key(name: str) -> str:
    low = name.lower()
    for key, names in CITY_ALIASES.items():
        if low in names:
            return key
    return to_simplified(name)


def _find_places(text: str, places: re.Pattern) -> list[Place]:
    """The places `text` names, in order."""
    return [Place(_key(m.group()), m.group(), m.start(), m.end()) for m in places.finditer(text)]


# ---- merging with the previous question


def _merge(previous: str, follow: FollowUp, message: str, places: re.Pattern) -> str:
    """`previous` with what `follow` changes; `message` is the follow-up as typed."""
    prev = unicodedata.normalize("NFC", previous.strip())
    body = prev.rstrip(_END_PUNCT)
    end = prev[len(body) :]
    english = is_english(body)
    if follow.pronoun:
        said = message.strip()
        return f"{body}{end} {said}" if english else f"{_topic(body)}，{said}"
    if follow.place:
        body = _swap_place(body, follow.place, english, places)
    if follow.year:
        body = _swap_year(body, follow.year, english, places)
    if follow.aspect:
        body = (follow.modifier and _swap_modifier(body, follow.aspect)) or _swap_aspect(body, follow.aspect, english, places)
    if is_english(body) != english:  # the thing asked is in the other language: so is the question
        end = end.replace("?", "？") if english else end.replace("？", "?")
    return body + end


def _render(place: Place, english: bool, body: str, previous_name: str = "") -> str:
    """`place` spelt like the previous question: in English, or in the script of its city name
    (忻州 is the same in both scripts: then in the script of the whole question)."""
    names = CITY_ALIASES.get(place.key)
    if not names:
        return place.text
    if english:
        return next(n for n in names if not _CJK.search(n)).title()
    traditional = next((n for n in names if _CJK.search(n) and n != place.key), place.key)
    is_trad = previous_name != to_simplified(previous_name) or _script_trad(body)
    return traditional if is_trad else place.key


def _script_trad(text: str) -> bool:
    cjk = [c for c in text if _CJK.match(c)]
    changed = sum(a != b for a, b in zip(cjk, to_simplified("".join(cjk))))
    return changed * 5 > len(cjk)  # a traditional question changes under conversion throughout


def _swap_place(body: str, place: Place, english: bool, places: re.Pattern) -> str:
    found = _find_places(body, places)
    if not found:  # the previous question named no place: say it
        name = _render(place, english, body)
        return f"{body} in {name}" if english else name + body
    first = found[0].key
    out, last = [], 0
    for p in found:
        if p.key == first:
            out += [body[last : p.start], _render(place, english, body, p.text)]
            last = p.end
    return "".join(out) + body[last:]


def _swap_year(body: str, year: str, english: bool, places: re.Pattern) -> str:
    years = _YEAR.findall(body)
    if years:
        return _YEAR.sub(lambda m: year if m.group() == years[0] else m.group(), body)
    if english:
        return f"{body} in {year}"
    found = _find_places(body, places)
    if not found:
        return f"{year}年{body}"
    at = found[0].end + (1 if body[found[0].end : found[0].end + 1] == "市" else 0)
    return f"{body[:at]}{year}年{body[at:]}"


def _swap_aspect(body: str, aspect: str, english: bool, places: re.Pattern) -> str:
    """The previous question asking about `aspect` instead of its own subject."""
    aspect_english = is_english(aspect)
    if english and aspect_english:
        for pattern in (_EN_HOW_MANY, _EN_POSSESSIVE, _EN_OF):
            m = pattern.match(body)
            if m:
                return m.group("h") + aspect + (m.group("r") if "r" in pattern.groupindex else "")
    elif not english and not aspect_english:
        m = _SUBJECT_AFTER.search(body)  # "长治市有多少所|幼儿园"
        if m:
            return body[: m.start()] + _plain_ask(m.group("q")) + aspect
        m = _subject_before(places).match(body)  # "吕梁市|专任教师|有多少人"
        if m:
            q = _plain_ask(m.group("q"))
            return m.group("h") + aspect + (q if q[:1] in "有是为" else "有" + q) + m.group("t")
    # No frame to fill, or the follow-up in another language: the thing asked, where and when.
    found = _find_places(body, places)
    years = _YEAR.findall(body)
    if aspect_english:
        where = [f"in {_render(found[0], True, body)}"] if found else []
        return " ".join([aspect, *where] + ([f"in {years[0]}"] if years else []))
    name = _render(found[0], False, "" if english else body) if found else ""
    return name + (f"{years[0]}年" if years else "") + aspect


def _swap_modifier(body: str, mod: str) -> str:
    """A modifier follow-up ("县级的呢" after "…省级“平安校园”…") replaces one of its length ending like it
    (省级, 市级 -> 县级); empty when there is none."""
    if len(mod) < 2 or mod in body:
        return ""
    for i in range(len(body) - len(mod) + 1):
        piece = body[i : i + len(mod)]
        if piece != mod and piece[-1] == mod[-1] and _CJK.match(piece[0]):
            return body[:i] + mod + body[i + len(mod) :]
    return ""


def _plain_ask(q: str) -> str:
    """A question word without its measure word (it belonged to the old subject): 几所 -> 多少."""
    q = re.sub(rf"(多少|几|哪几|哪){_MEASURE}$", r"\1", q)
    return re.sub(r"哪几$|哪$", "哪些", q).replace("几", "多少")


@lru_cache(maxsize=64)
def _subject_before(places: re.Pattern) -> re.Pattern:
    lead = rf"(?:(?:19|20)\d{{2}}年)?(?:(?:{places.pattern})市?(?:的|全市)?)?(?:(?:19|20)\d{{2}}年)?"
    return re.compile(rf"^(?P<h>{lead})(?P<s>.+?)(?P<q>{_ASK_FIGURE}|{_ASK_WHAT})(?P<t>[吗呢]?)$", re.I)


def _topic(body: str) -> str:
    """What a Chinese question is about: the question without what asks (多少所, 哪些, 吗)."""
    return _TOPIC_DROP.sub("", body).rstrip("的了，,、 ") or body
