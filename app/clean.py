"""Cleaning: pure functions from a report as received to the text users are shown.

What goes: web navigation and share lines, junk tails ("相关推荐", copyright, other
headlines), credits, HTML tags, pinyin annotations such as `統(tǒng)`, mojibake
OCR line breaks in mid-sentence, spaces an OCR put between Chinese characters and
short OCR junk lines at the top of a page. Mojibake is read again where its bytes can
be, and shown as □ (the typesetter's mark for a lost character) where they cannot.
What stays: the report's own text, in its own script, with headings on lines of their own.
"""

from __future__ import annotations

import bisect
import html
import itertools
import math
import re
from functools import lru_cache

# Lines from which everything to the end is someone else's page furniture.
TAIL_MARKERS = re.compile(
    r"^\s*(声明[:：]取材网络|特别声明|Notice: The content above|相关推荐|热点推荐|相關推薦|熱點推薦|"
    r"\d*\s*上一篇|Copyright|版权所有|版權所有|免责声明|免責聲明|往期回顾)"
)
# Single lines of navigation, sharing and credits.
NAV_LINE = re.compile(
    r"(~~~|^\s*欢迎来到|^\s*歡迎來到|^\s*\d{1,2}[:：]\s*要闻\s*$|^\s*分享至\s*$|申请入驻|"
    r"^\s*\S+\s*>\s*\S+\s*>|^\s*放大\s*缩小|^\s*第\d+版[:：]|^\s*\d+\s*$|"
    r"^\s*[（(]?\s*(文字|设计|設計|图片|圖片|摄影|攝影|责任编辑|責任編輯|来源|來源|编辑|編輯)\s*[:：])"
)
HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")
SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
# A parenthesised pinyin syllable (with at least one tone mark) after a CJK character; an
# OCR may have put spaces before it, which go too (else `統 (tǒng)` survived as `統(tǒng)`).
TONE = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
PINYIN = re.compile(rf"(?<=[\u3400-\u9fff])[ \t\u3000\u00a0]*[(（][a-zü]*[{TONE}][a-zü]*[)）]")
CJK = r"\u3400-\u9fff\uf900-\ufaff"
CJK_PUNCT = r"，。！？；：、“”‘’（）《》【】—…·,.;:!?()\"'"
SPACE_IN_CJK = re.compile(rf"(?<=[{CJK}{CJK_PUNCT}])[ \t\u3000\u00a0]+(?=[{CJK}{CJK_PUNCT}])")
# A title and its subtitle on one line, a space between them (`下好“党建棋” 答好“基础卷”`):
# the space stays, and in an OCR'd text the line is a heading.
TWO_PART = re.compile(rf"([{CJK}“”\"《》]{{4,}})[ \t\u3000\u00a0]+([{CJK}“”\"《》]{{4,}})")
SENTENCE_END = tuple("。！？；：”」』…!?;)")
OCR_MIN_LINE = 15  # a line this long with no closing punctuation was broken by the layout


def strip_html(text: str) -> str:
    """Drop scripts, styles and tags; unescape entities."""
    if "<" not in text and "&" not in text:
        return text
    return html.unescape(HTML_TAG.sub("", SCRIPT_STYLE.sub("", text)))


def strip_pinyin(text: str) -> str:
    """`統(tǒng)一` -> `統一`."""
    return PINYIN.sub("", text)


# --------------------------------------------------------------------------- mojibake
#
# Two ways the bytes of a Chinese text get read wrong, each undone by reading them again:
# - GBK bytes read one byte out of step after a byte was lost or added: every pair then
#   straddles two characters (`當地公務員` -> `當?數毓珓諉T`) until a byte in the ASCII range
#   (the `T`, the second byte of 員) brings the reading back in step. The pair where it
#   slipped could not be read (`?` or U+FFFD, which may swallow the `(` of a pinyin
#   annotation after it: `?shù)`); the character there is lost, shown as □. Fullwidth
#   punctuation in the run may have been folded to ASCII since (`！` -> `!`).
# - UTF-8 bytes read as GBK (`學校` -> `瀛告牎`).
# A new reading is kept only when it is far more fluent Chinese than the text as it stands
# (jieba's word frequencies); a spot that is not a question mark is shown as □ either way.

MISSING = "□"
# A byte that could not be read, with the pinyin annotation whose `(` it swallowed.
SPOT = re.compile(rf"[?\ufffd](?:[a-zü]*[{TONE}][a-zü]*[)）])?")
FOLDED = "!\"#%&'()*+,-./:;<=>@[\\]^_`{|}~"  # ASCII punctuation that may stand for its fullwidth form
REREAD_MIN_GAIN = 1.0  # nats a character: a new reading must be this much more fluent
RARE = 200  # a character (as a one-character word) this rare in jieba's dictionary may be mojibake
CONTEXT = 4  # characters either side of a re-read run that take part in judging it
MAX_RUN = 24  # longest run read again


@lru_cache(maxsize=1)
def _jieba_dt():
    from .textnorm import jieba_module

    return jieba_module().dt


@lru_cache(maxsize=4096)
def fluency(text: str) -> float | None:
    """Mean log-probability a letter of `text` under jieba's most likely segmentation of its
    Chinese characters (simplified), other non-ASCII letters (kana, Cyrillic, fullwidth Latin:
    what mojibake is made of) counting as unknown words; None without any. Running text:
    about -4 to -6 a character; mojibake: -9 and below."""
    from .textnorm import to_simplified

    s = "".join(re.findall(rf"[{CJK}]", to_simplified(text)))
    foreign = sum(1 for ch in text if ch >= "\x80" and ch.isalpha() and not re.match(rf"[{CJK}]", ch))
    if not s and not foreign:
        return None
    dt = _jieba_dt()
    route: dict = {len(s): (0.0, 0)}
    if s:
        dt.calc(s, dt.get_DAG(s), route)
    return (route[0][0] - foreign * math.log(dt.total)) / (len(s) + foreign)


@lru_cache(maxsize=1 << 16)
def _rare(ch: str) -> bool:
    from .textnorm import to_simplified

    return bool(re.match(rf"[{CJK}]", ch)) and (_jieba_dt().FREQ.get(to_simplified(ch)) or 0) < RARE


def _gain(new: str, old: str, before: str, after: str) -> float:
    """How much more fluent `new` is than `old`, between `before` and `after`."""
    f_new, f_old = fluency(before + new + after), fluency(before + old + after)
    if f_new is None:
        return float("-inf")
    return f_new - (f_old if f_old is not None else -20.0)


def _unfolded(run: str) -> list[str]:
    """`run` with each of its (at most three) ASCII punctuation marks as is or fullwidth."""
    marks = [i for i, ch in enumerate(run) if ch in FOLDED][:3]
    out = []
    for wide in itertools.product((False, True), repeat=len(marks)):
        chars = list(run)
        for i, w in zip(marks, wide, strict=True):
            if w:
                chars[i] = chr(ord(chars[i]) + 0xFEE0)
        out.append("".join(chars))
    return out


def _in_step(run: str) -> list[str]:
    """Readings of `run` as GBK bytes read one byte late: its first byte was the second of a
    lost character (□), a last lead byte without its pair is another (□)."""
    out = []
    for variant in _unfolded(run):
        try:
            data = variant.encode("gbk")[1:]
        except UnicodeEncodeError:
            continue
        try:
            out.append(MISSING + data.decode("gbk"))
        except UnicodeDecodeError as e:
            if e.start == len(data) - 1:
                out.append(MISSING + data[:-1].decode("gbk") + MISSING)
    return out


def _best_reading(text: str, spans: list[tuple[int, int]]) -> tuple[int, int, str] | None:
    """Of the runs `text[a:b]` (each holding a rare character), the one whose reading in step
    reads best among its neighbours (all judged on the same stretch of text, so a run that
    leaves mojibake beside it loses), kept if it gains `REREAD_MIN_GAIN` over the run as it
    stands: (a, b, its reading)."""
    spans = [(a, b) for a, b in spans if any(map(_rare, text[a:b]))]
    if not spans:
        return None
    lo = max(0, min(a for a, _ in spans) - CONTEXT)
    hi = max(b for _, b in spans) + 2 * CONTEXT
    best, best_score = None, float("-inf")
    for a, b in spans:
        for new in _in_step(text[a:b]):
            score = fluency(SPOT.sub("", text[lo:a] + new + text[b:hi]))
            if score is not None and score > best_score:
                best, best_score = (a, b, new), score
    if best is None:
        return None
    a, b, new = best
    before, after = SPOT.sub("", text[max(0, a - CONTEXT) : a]), SPOT.sub("", text[b : b + 2 * CONTEXT])[:CONTEXT]
    return best if _gain(new, text[a:b], before, after) >= REREAD_MIN_GAIN else None


def _spans_around(text: str, s: int, e: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """Runs that may have been read out of step next to the spot text[s:e]: ending at it (they
    hold no ASCII, which would have brought the reading back in step), or starting after it
    and ending at an ASCII-range byte read alone or at the next spot."""
    spans = []
    j = s
    if s == e and s > lo:  # a lone letter ends the run
        j -= 1
    while j > max(lo, s - MAX_RUN) and not text[j - 1].isspace() and (text[j - 1] >= "\x80" or text[j - 1] in FOLDED):
        j -= 1
        spans.append((j, s))
    if s == e:
        return spans
    for k in range(e + 1, min(hi, e + MAX_RUN) + 1):
        if text[k - 1].isspace():
            break
        if "\x40" <= text[k - 1] <= "\x7e" or k == hi:
            spans.append((e, k))
    return spans


# A letter alone between Chinese characters: the second byte of a GBK character, read alone
# where it brought a reading out of step back in step (`當地公務員` -> `..珓諉T`).
LONE_LETTER = re.compile(r"(?<=[^\x00-\x7f])[\x40-\x7e](?=[^\x00-\x7f])")
# Where a question mark cannot be one: at the start of a line or after punctuation.
NOT_A_QUESTION = re.compile(r"(^|[，,、；;：:。！!？?（(“《])$")


def _repair_spots(text: str) -> str:
    """Spots (`?`, U+FFFD) and lone letters read again where a run beside them was read out
    of step; a spot nothing reads again becomes □, but for a question mark, which stays.
    Nothing is dropped but a run a reading replaced (`怎么办?忻州市` stays as it is)."""
    out: list[str] = []

    def emit(*pieces: str) -> None:
        out.extend(p for p in pieces if p)  # never empty: out[-1] is what the output ends with

    pos = 0
    spots = sorted([*SPOT.finditer(text), *LONE_LETTER.finditer(text)], key=lambda m: m.start())
    spot_starts = [m.start() for m in spots if m.re is SPOT]
    for m in spots:
        s, e = m.span()
        if s < pos:
            continue
        if m.re is LONE_LETTER:  # the end of a run read out of step, if anything
            found = _best_reading(text, _spans_around(text, e, e, pos, e)[:MAX_RUN])
            if found:
                a, b, new = found
                emit(text[pos:a], new)
                pos = b
            continue
        k = bisect.bisect_right(spot_starts, s)  # the next spot bounds a run after this one
        hi = spot_starts[k] if k < len(spot_starts) else len(text)
        found = _best_reading(text, _spans_around(text, s, e, pos, hi))
        if found:  # the spot's own □ starts a reading after it, follows one before it
            a, b, new = found
            emit(text[pos : min(a, s)], new if a == e else new + MISSING)
            pos = max(b, e)
            continue
        emit(text[pos:s])
        pos = e
        question = not NOT_A_QUESTION.search(text[max(0, s - 1) : s]) and not SPOT.match(text, e)
        after_missing = bool(out) and out[-1].endswith(MISSING)
        emit("?" if m.group() == "?" and question and not after_missing else MISSING)
    emit(text[pos:])
    return "".join(out)


@lru_cache(maxsize=1 << 16)
def _utf8_bytes(ch: str) -> bool:
    """Whether both GBK bytes of `ch` can be part of UTF-8 for Chinese (E0-EF, 80-BF)."""
    try:
        data = ch.encode("gbk")
    except UnicodeEncodeError:
        return False
    return len(data) == 2 and all(0x80 <= b <= 0xBF or 0xE0 <= b <= 0xEF for b in data)


def _utf8_runs(text: str) -> list[tuple[int, int, str]]:
    """Longest runs of two or more characters whose GBK bytes are UTF-8 for Chinese (a last
    character cut short shown as □), with that reading: UTF-8 read as GBK, if it is fluent."""
    out = []
    flags = "".join("1" if _utf8_bytes(ch) else "0" for ch in text)
    for seg in re.finditer("1{2,}", flags):
        i, end = seg.start(), min(len(text), seg.end() + 1)  # and a last character cut short
        while i < end - 1:
            best = None
            for j in range(i + 1, min(end, i + MAX_RUN) + 1):
                data = text[i:j].encode("gbk", errors="replace")
                try:
                    best = (j, data.decode("utf-8"))
                except UnicodeDecodeError as err:
                    if err.reason != "unexpected end of data":
                        break
                    if j - i > 1:  # a last character cut short: the rest of it went with the next byte
                        best = (j, data[: err.start].decode("utf-8") + MISSING)
            if best and best[0] - i >= 2 and re.search(f"[{CJK}]", best[1]) and any(map(_rare, text[i : best[0]])):
                j, new = best
                before, after = text[max(0, i - CONTEXT) : i], text[j : j + CONTEXT]
                if _gain(new, text[i:j], before, after) >= REREAD_MIN_GAIN:
                    out.append((i, j, new))
                    i = j
                    continue
            i += 1
    return out


def repair_mojibake(text: str) -> str:
    """Mojibake read again where its bytes allow, else shown as □; question marks stay.

    `當?shù)毓珓諉T平均` -> `當□公務員平均`; `瀛告牎` -> `學校`; `而来?这背后` unchanged.
    """
    for i, j, new in reversed(_utf8_runs(text)):
        text = text[:i] + new + text[j:]
    if "?" in text or "\ufffd" in text or LONE_LETTER.search(text):
        text = _repair_spots(text)
    return re.sub(f"{MISSING}{{2,}}", MISSING, text)


def cut_tail(lines: list[str], min_body: int = 200) -> list[str]:
    """Drop everything from the first junk-tail marker that follows a real body of text."""
    body = 0
    for i, line in enumerate(lines):
        if body >= min_body and TAIL_MARKERS.match(line):
            return lines[:i]
        body += len(line)
    return lines


def _unfinished(line: str) -> bool:
    return len(line) >= OCR_MIN_LINE and not line.endswith(SENTENCE_END) and bool(re.match(rf"[{CJK}]", line[-1]))


HEADING_MAX = 30  # longest line taken for a heading
NOT_A_HEADING = re.compile(r"[，,、；;：:。！？!?…]")  # a heading has no sentence punctuation...
ENUMERATOR = re.compile(r"^[（(]?[一二三四五六七八九十\d]{1,3}[）)、.．]")  # ...but for its number
OCR_JUNK_MAX = 8  # longest line at the top of an OCR page that may be junk


def _broken(lines: list[str]) -> bool:
    """Whether lines broken mid-sentence are common: a third of the long lines end unfinished."""
    long_lines = [ln for ln in lines if len(ln) >= OCR_MIN_LINE]
    return bool(long_lines) and sum(map(_unfinished, long_lines)) >= len(long_lines) / 3


def _word_across(a: str, b: str) -> bool:
    """Whether a word of jieba's dictionary runs from the end of `a` into the start of `b`."""
    from .textnorm import to_simplified

    tail, head = to_simplified(a[-4:]), to_simplified(b[:4])
    pos = 0
    for w in _jieba_dt().cut(tail + head, HMM=False):
        if pos < len(tail) < pos + len(w):
            return True
        pos += len(w)
    return False


def _heading(line: str, prev: str | None, nxt: str | None, prev_heading: bool) -> bool:
    """Whether `line` is a heading that ends where the next line's sentence begins.

    A line of a few words without sentence punctuation, that no word joins to the next line:
    if short, one; if longer, only after a finished sentence (or another heading) and before a
    line at least twice its length (not the next line of the same column), or if it is a
    title and subtitle with a space between them."""
    if nxt is None or len(line) > HEADING_MAX or line.endswith(SENTENCE_END):
        return False
    if NOT_A_HEADING.search(ENUMERATOR.sub("", line)) or _word_across(line, nxt):
        return False
    if len(line) < OCR_MIN_LINE:
        return not (prev and _unfinished(prev) and _word_across(prev, line))
    after_a_sentence = prev is None or prev.endswith(SENTENCE_END) or prev_heading
    return after_a_sentence and (len(nxt) >= 2 * len(line) or bool(TWO_PART.fullmatch(line)))


def ocr_junk(line: str) -> bool:
    """A few Chinese characters that form no word of jieba's dictionary (`在梁日级`, a
    masthead misread): junk at the top of an OCR page. A name or a heading has a word."""
    from .textnorm import to_simplified

    if not 4 <= len(line) <= OCR_JUNK_MAX or not re.fullmatch(f"[{CJK}]+", line):
        return False
    return all(len(w) == 1 for w in _jieba_dt().cut(to_simplified(line), HMM=False))


def _joined(lines: list[str]) -> list[tuple[int, str]]:
    """`join_broken_lines`, each output line with the index of the input line it starts with."""
    if not _broken(lines):
        return list(enumerate(lines))
    heads: list[bool] = []
    for i, line in enumerate(lines):
        prev, nxt = lines[i - 1] if i else None, lines[i + 1] if i + 1 < len(lines) else None
        heads.append(_heading(line, prev, nxt, bool(heads) and heads[-1]))
    out: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        joins = out and not heads[i] and not heads[out[-1][0]] and _unfinished(out[-1][1])
        if joins and re.match(rf"[{CJK}\d\"“《(（]", line):
            out[-1] = (out[-1][0], out[-1][1] + line)
        else:
            out.append((i, line))
    return out


def join_broken_lines(lines: list[str]) -> list[str]:
    """Join lines broken mid-sentence by a print layout or an OCR.

    Only in documents where such lines are common (a third of the long lines end
    without punctuation): elsewhere an unpunctuated line is a heading. There too a
    heading (`_heading`) stays a line of its own, not run into the sentence after it.
    """
    return [line for _, line in _joined(lines)]


def _lines(raw: str) -> list[str]:
    text = raw.lstrip("\ufeff")
    text = strip_html(text)
    text = strip_pinyin(text)
    text = repair_mojibake(text)
    # splitlines: \r\n and \r, but also form feeds (pdftotext's page breaks), \v and \u2028
    # end a line; any white space left alone on a line makes it blank.
    return [ln for ln in map(_unspaced, text.splitlines()) if ln]


def _unspaced(line: str) -> str:
    """`line` without the spaces an OCR put between Chinese characters, but for a title's."""
    line = line.strip()
    two = TWO_PART.fullmatch(line)
    return f"{two[1]} {two[2]}" if two else SPACE_IN_CJK.sub("", line).strip()


def clean_pages(pages: list[str]) -> tuple[str, list[int]]:
    """The cleaned text of a report given page by page, and where each page starts in it.

    A junk tail ends its page only (a PDF's footer, not the rest of the report); repeated
    lines (running headers) and broken lines are handled across pages, as in one text.
    A line joined across a page break counts on the page it starts on.
    """
    tagged = []
    for p, page in enumerate(pages):
        tagged += [(p, ln) for ln in cut_tail(_lines(page))]
    seen: set[str] = set()
    kept: list[tuple[int, str]] = []
    for p, ln in tagged:
        if NAV_LINE.search(ln):
            continue
        if len(ln) < 80 and ln in seen:  # repeated headers and captions
            continue
        seen.add(ln)
        kept.append((p, re.sub(r"[ \t\u3000\u00a0]{2,}", " ", ln)))
    if len(kept) > 1 and _broken([ln for _, ln in kept]):  # an OCR: junk at the top of a page goes
        first_of_page: dict[int, int] = {}
        for i, (q, _) in enumerate(kept):
            first_of_page.setdefault(q, i)
        firsts = set(first_of_page.values())
        kept = [pl for i, pl in enumerate(kept) if not (i in firsts and ocr_junk(pl[1]))]
    starts: list[int] = []
    out: list[str] = []
    pos = 0
    for i, line in _joined([ln for _, ln in kept]):
        while len(starts) <= kept[i][0]:
            starts.append(pos)
        out.append(line)
        pos += len(line) + 1
    text = "\n".join(out)
    starts += [len(text)] * (len(pages) - len(starts))  # pages with no text left
    return text, starts


def clean_text(raw: str) -> str:
    """The cleaned text of one report: one paragraph a line, no blank lines."""
    return clean_pages([raw])[0]
