"""Cleaning: pure functions from a report as received to the text users are shown.

What goes: web navigation and share lines, junk tails ("相关推荐", copyright, other
headlines), credits, HTML tags, pinyin annotations such as `統(tǒng)`, mojibake
fragments, OCR line breaks in mid-sentence and spaces an OCR put between Chinese
characters. What stays: the report's own text, in its own script.
"""

from __future__ import annotations

import html
import re

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
# Mojibake left by a GBK/UTF-8 mix-up: '?'-fenced fragments inside Chinese text.
MOJIBAKE = re.compile(rf"\?[!！。，,”“]?[\u3400-\u9fff]?\?([a-zü]*[{TONE}][a-zü]*[)）])?|\ufffd")
CJK = r"\u3400-\u9fff\uf900-\ufaff"
CJK_PUNCT = r"，。！？；：、“”‘’（）《》【】—…·,.;:!?()\"'"
SPACE_IN_CJK = re.compile(rf"(?<=[{CJK}{CJK_PUNCT}])[ \t\u3000\u00a0]+(?=[{CJK}{CJK_PUNCT}])")
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


def _joined(lines: list[str]) -> list[tuple[int, str]]:
    """`join_broken_lines`, each output line with the index of the input line it starts with."""
    long_lines = [ln for ln in lines if len(ln) >= OCR_MIN_LINE]
    if not long_lines or sum(map(_unfinished, long_lines)) < len(long_lines) / 3:
        return list(enumerate(lines))
    out: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if out and _unfinished(out[-1][1]) and re.match(rf"[{CJK}\d\"“《(（]", line):
            out[-1] = (out[-1][0], out[-1][1] + line)
        else:
            out.append((i, line))
    return out


def join_broken_lines(lines: list[str]) -> list[str]:
    """Join lines broken mid-sentence by a print layout or an OCR.

    Only in documents where such lines are common (a third of the long lines end
    without punctuation): elsewhere an unpunctuated line is a heading.
    """
    return [line for _, line in _joined(lines)]


def _lines(raw: str) -> list[str]:
    text = raw.lstrip("\ufeff")
    text = strip_html(text)
    text = strip_pinyin(text)
    text = MOJIBAKE.sub("", text)
    # splitlines: \r\n and \r, but also form feeds (pdftotext's page breaks), \v and \u2028
    # end a line; any white space left alone on a line makes it blank.
    return [ln for ln in (SPACE_IN_CJK.sub("", ln).strip() for ln in text.splitlines()) if ln]


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
