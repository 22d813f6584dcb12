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


def join_broken_lines(lines: list[str]) -> list[str]:
    """Join lines broken mid-sentence by a print layout or an OCR.

    Only in documents where such lines are common (a third of the long lines end
    without punctuation): elsewhere an unpunctuated line is a heading.
    """
    long_lines = [ln for ln in lines if len(ln) >= OCR_MIN_LINE]
    if not long_lines or sum(map(_unfinished, long_lines)) < len(long_lines) / 3:
        return lines
    out: list[str] = []
    for line in lines:
        if out and _unfinished(out[-1]) and re.match(rf"[{CJK}\d\"“《(（]", line):
            out[-1] += line
        else:
            out.append(line)
    return out


def clean_text(raw: str) -> str:
    """The cleaned text of one report: one paragraph a line, no blank lines."""
    text = raw.lstrip("\ufeff")
    text = strip_html(text)
    text = strip_pinyin(text)
    text = MOJIBAKE.sub("", text)
    # splitlines: \r\n and \r, but also form feeds (pdftotext's page breaks), \v and \u2028
    # end a line; any white space left alone on a line makes it blank.
    lines = [SPACE_IN_CJK.sub("", ln).strip() for ln in text.splitlines()]
    lines = cut_tail([ln for ln in lines if ln])
    seen: set[str] = set()
    kept = []
    for ln in lines:
        if NAV_LINE.search(ln):
            continue
        if len(ln) < 80 and ln in seen:  # repeated headers and captions
            continue
        seen.add(ln)
        kept.append(re.sub(r"[ \t\u3000\u00a0]{2,}", " ", ln))
    return "\n".join(join_broken_lines(kept))
