"""The look and behaviour of the chat page: CSS (light and dark, WCAG AA contrast), the head
snippet with the page's small scripts, the scroll script, the theme's colours and the fonts.

The scripts (in `HEAD`) do what Gradio's chatbot cannot be told to: the copy button copies an
answer's plain text with its citations (not its HTML), each message is announced in words
(its `data-label`), the thumbs beside each passage send their vote, a filter's option list
closes when Tab leaves it, the question box says when a question is over the limit, and a report
uploaded from the panel carries the key typed above it.
"""

from __future__ import annotations

from .answer import MAX_QUESTION

# Colours: every text colour here has at least 4.5:1 contrast on the background it sits on.
CSS = """
.gradio-container { font-family: 'Source Sans Pro', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', ui-sans-serif, system-ui, sans-serif; }
#rq-top { align-items: center; }
#rq-title h1 { margin: 0; font-size: 1.45rem; }
#rq-lang { flex-grow: 0 !important; }
#rq-intro .rq-intro p { margin: 0 0 .2rem; color: var(--body-text-color); }
#rq-intro details { font-size: .9em; }
#rq-intro summary { cursor: pointer; color: var(--rq-link); }
#rq-intro ol { margin: .2rem 0 .2rem 1.2rem; padding: 0; }
.rq-answer { line-height: 1.6; }
.rq-answer p { margin: .2rem 0 .5rem; }
.rq-line { font-size: 1.12em; margin-bottom: .45rem !important; }
.rq-line .rq-value { font-size: 1.15em; color: var(--rq-value); }
.rq-refs { color: var(--rq-link); font-weight: 600; }
.rq-agree { color: var(--rq-muted); font-size: .85em; margin-left: .4em; }
.rq-lead { font-weight: 600; }
.rq-none, .rq-possible-head { font-weight: 600; color: var(--rq-warn); }
.rq-why { color: var(--body-text-color); }
.rq-report { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .6rem .9rem; background: var(--background-fill-primary); }
.rq-report-nav { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; align-items: baseline; margin-bottom: .3rem; }
.rq-report-nav a, a.rq-open { color: var(--rq-link); }
.rq-where { color: var(--rq-muted); font-size: .9em; }
.rq-report-title { font-size: 1.15em; margin: .2rem 0; }
.rq-report-text { white-space: pre-wrap; line-height: 1.7; max-height: 60vh; overflow-y: auto; margin-top: .4rem; }
mark.rq-here { background: var(--rq-mark); color: var(--rq-mark-text); padding: 0 .1em; }
.rq-report-body { display: flex; flex-wrap: wrap; gap: .8rem; align-items: flex-start; }
.rq-report-body > .rq-report-text { flex: 1 1 22rem; min-width: 0; }
.rq-page { flex: 1 1 22rem; min-width: 0; margin: .4rem 0 0; max-height: 60vh; overflow-y: auto; }
.rq-page-no { color: var(--rq-muted); font-size: .85em; margin-bottom: .2rem; }
.rq-page-img { display: block; width: 100%; height: auto; border: 1px solid var(--border-color-primary); background: #fff; }
.rq-page-none { color: var(--rq-muted); }
a.rq-open { font-size: .9em; margin-left: .5em; }
.rq-searched { color: var(--rq-muted); font-size: .92em; margin: .2em 0; }
.rq-notice { color: var(--rq-warn); font-size: .92em; font-weight: 600; }
.rq-searching p { color: var(--rq-muted); font-style: italic; }
.rq-differ { border: 1px solid var(--rq-differ-border); background: var(--rq-differ-bg); color: var(--body-text-color); border-radius: 8px; padding: .5rem .7rem; margin: .4rem 0 .8rem; }
.rq-differ-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: .5rem; margin-top: .4rem; }
.rq-differ-item { background: var(--background-fill-primary); border: 1px solid var(--rq-differ-border); border-radius: 6px; padding: .4rem .55rem; }
.rq-differ-item .rq-value { font-size: 1.1em; color: var(--rq-value); }
.rq-differ-src { display: block; color: var(--rq-muted); font-size: .85em; }
ol.rq-cites { list-style: none; padding: 0; margin: 0; }
li.rq-cite { border: 1px solid var(--border-color-primary); border-left: 4px solid var(--rq-link); border-radius: 8px; padding: .55rem .75rem; margin: 0 0 .7rem; background: var(--background-fill-primary); }
.rq-closest li.rq-cite { border-left-color: var(--rq-muted); }
.rq-head { font-weight: 600; }
.rq-num { display: inline-block; min-width: 1.8em; color: var(--rq-link); }
.rq-meta { color: var(--rq-muted); font-size: .85em; margin: .1rem 0 .35rem; }
.rq-passage { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; padding: 0; border: 0; font-size: .95em; }
.rq-answer mark { background: var(--rq-mark); color: var(--rq-mark-text); padding: 0 .1em; border-radius: 2px; }
.rq-context { margin-top: .35rem; font-size: .9em; }
.rq-context summary { cursor: pointer; color: var(--rq-link); }
.rq-context-text { white-space: pre-wrap; overflow-wrap: anywhere; color: var(--body-text-color); margin-top: .3rem; }
.rq-context-text mark.rq-ctx { background: var(--rq-ctx); color: var(--body-text-color); }
.rq-context-text strong { background: var(--rq-mark); color: var(--rq-mark-text); font-weight: 600; }
.rq-votes { display: flex; align-items: center; gap: .4rem; margin-top: .35rem; }
.rq-ask { color: var(--rq-muted); font-size: .85em; }
.rq-vote { cursor: pointer; font-size: .85em; line-height: 1.2; padding: .25rem .55rem; color: var(--body-text-color); border: 1px solid var(--border-color-primary); border-radius: 6px; user-select: none; }
.rq-vote:hover, .rq-vote:focus-visible { border-color: var(--rq-link); outline: 2px solid var(--rq-link); outline-offset: 1px; }
.rq-vote[aria-pressed="true"] { background: var(--rq-ctx); border-color: var(--rq-link); }
.rq-ack { color: var(--rq-ok); font-size: .85em; font-weight: 600; }
.rq-time { color: var(--rq-muted); font-size: .8em; margin-top: .2rem; }
.rq-plain, .rq-label { display: none; }
.rq-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.rq-hidden { display: none !important; }
#rq-count { color: var(--rq-warn); font-weight: 600; font-size: .9em; min-height: 0; }
#rq-count:empty { display: none; }
#rq-vote-ack { color: var(--rq-ok); font-size: .9em; }
#rq-examples button { white-space: normal; text-align: left; }
#rq-footer, #rq-footer p { color: var(--rq-muted); font-size: .85em; }
@media (max-width: 640px) {
  #rq-title h1 { font-size: 1.15rem; }
  #rq-intro .rq-intro p { font-size: .85rem; }
  #rq-intro details { display: none; }
  #rq-chat .message-row { padding: 8px !important; }
  #rq-chat .message { margin-left: 0 !important; }
  #rq-chat .bot { padding: 2px 4px !important; }
  li.rq-cite { padding: .45rem .55rem; }
  .rq-differ { padding: .4rem .5rem; }
  .rq-line { font-size: 1.2em; }
}
"""

_VARS = """
:root, body { --rq-link: #1d4ed8; --rq-muted: #4b5563; --rq-warn: #9a3412; --rq-ok: #166534; --rq-value: #111827;
  --rq-mark: #fde047; --rq-mark-text: #111827; --rq-ctx: #dbeafe; --rq-differ-bg: #fffbeb; --rq-differ-border: #d97706; }
body.dark, .dark { --rq-link: #93c5fd; --rq-muted: #d1d5db; --rq-warn: #fdba74; --rq-ok: #86efac; --rq-value: #f9fafb;
  --rq-mark: #854d0e; --rq-mark-text: #fefce8; --rq-ctx: #1e3a8a; --rq-differ-bg: #292524; --rq-differ-border: #b45309; }
@media (max-width: 640px) { .gradio-container .main.app { padding: 8px 6px !important; } }
"""

# Set the page's language; `lang` is "zh" or "en".
# The report view: its top on screen, its text scrolled so that the passage is a third of the way down.
REPORT_JS = """() => { const m = document.getElementById('rq-here'); const box = m && m.closest('.rq-report-text');
  if (!box) return; box.closest('.rq-report').scrollIntoView({block: 'start'});
  box.scrollTop += m.getBoundingClientRect().top - box.getBoundingClientRect().top - box.clientHeight / 3; }"""
LANG_JS = "(lang) => { document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN'; }"

_SCRIPT = r"""
document.documentElement.lang = 'zh-CN';
(() => {
  const MAX = %(max)d;
  const zh = () => document.documentElement.lang !== 'en';
  const plain = (markup) => {
    const doc = new DOMParser().parseFromString(markup, 'text/html');
    const p = doc.querySelector('.rq-plain');
    return p ? p.textContent : (doc.body.textContent || markup);
  };
  // The copy button copies the answer's plain text with its citations, not its HTML.
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (text) => write(typeof text === 'string' && text.includes('rq-answer') ? plain(text) : text);
  }
  // Messages announced in words: Gradio labels each with its whole content (markup).
  const words = (content, who) => {
    const doc = new DOMParser().parseFromString(content, 'text/html');
    const l = doc.querySelector('.rq-label');
    if (l) return l.textContent;
    const text = (doc.body.textContent || '').trim();
    const short = text.length > 200 ? text.slice(0, 200) + '…' : text;
    return who === 'user' ? (zh() ? '你的问题：' : 'Your question: ') + short : short;
  };
  const relabel = () => document.querySelectorAll('#rq-chat [aria-label]').forEach((el) => {
    const m = (el.getAttribute('aria-label') || '').match(/^(\w+)'s message: ([\s\S]*)$/);
    if (m) el.setAttribute('aria-label', words(m[2], m[1]));
  });
  // The upload area's name is its visible text (Gradio names it in English whatever it shows).
  const unname = () => document.querySelectorAll('#rq-add-file [aria-label]').forEach((el) => {
    if (el.textContent.trim() && !el.getAttribute('aria-label').includes(el.textContent.trim())) el.removeAttribute('aria-label');
  });
  new MutationObserver(() => { relabel(); unname(); }).observe(document.documentElement, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-label'] });
  // The thumbs beside each passage: the vote goes to a hidden box whose input event the server hears.
  const num = (el, p) => { const c = [...el.classList].find((x) => x.startsWith(p)); return c ? c.slice(p.length) : ''; };
  const vote = (el) => {
    const box = document.querySelector('#rq-vote-box textarea, #rq-vote-box input');
    if (!box) return;
    const up = el.classList.contains('rq-v-up');
    box.value = `${num(el, 'rq-m-')}:${num(el, 'rq-r-')}:${up ? 1 : -1}:${Date.now()}`;
    box.dispatchEvent(new Event('input', { bubbles: true }));
    const group = el.closest('.rq-votes');
    group.querySelectorAll('.rq-vote').forEach((b) => b.setAttribute('aria-pressed', b === el ? 'true' : 'false'));
    const ack = group.querySelector('.rq-ack');
    if (ack) ack.textContent = zh() ? (up ? '已记下：有用，谢谢！' : '已记下：没用，谢谢！') : (up ? 'Recorded: useful. Thank you!' : 'Recorded: not useful. Thank you!');
  };
  document.addEventListener('click', (e) => { const el = e.target.closest && e.target.closest('.rq-vote'); if (el) vote(el); });
  document.addEventListener('keydown', (e) => {
    const el = e.target.closest && e.target.closest('.rq-vote');
    if (el && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); vote(el); }
    // Tab out of a filter closes its option list: Gradio's own keydown handler, run after the blur,
    // opened it again; kept from it, the blur closes the list and focus moves on as usual.
    if (e.key === 'Tab' && e.target.closest && e.target.closest('#rq-city, #rq-report, #rq-remove')) e.stopPropagation();
  }, true);
  // A report uploaded from the panel carries the key typed above it: beyond this machine the server
  // takes no upload without it (the key stays in this page; nothing is stored).
  const send = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = typeof input === 'string' ? input : (input && input.url) || '';
    const box = document.querySelector('#rq-add-key input');
    let path = '';
    try { path = new URL(url, location.href).pathname; } catch (err) { path = ''; }
    if (box && box.value.trim() && path.endsWith('/gradio_api/upload')) {
      const headers = new Headers((init && init.headers) || {});
      headers.set('Authorization', 'Bearer ' + box.value.trim());
      init = { ...(init || {}), headers };
    }
    return send(input, init);
  };
  // A question over the limit: the page says so before it is sent.
  document.addEventListener('input', (e) => {
    if (!e.target.closest || !e.target.closest('#rq-question')) return;
    const out = document.getElementById('rq-count');
    if (!out) return;
    const n = e.target.value.length;
    out.textContent = n <= MAX ? '' : (zh()
      ? `问题有 ${n} 字，超过 ${MAX} 字的上限：发送后只检索前 ${MAX} 字，也可以改为只检索最后一句。`
      : `The question has ${n} characters, over the limit of ${MAX}: only the first ${MAX} are searched, or you can search its last sentence.`);
  }, true);
})();
""" % {"max": MAX_QUESTION}  # noqa: UP031 - the script's braces would all need doubling in an f-string

HEAD = f"<style>{_VARS}</style><script>{_SCRIPT}</script>"

# A long answer is read from its top: scroll the chat to the latest question, not to the bottom.
SCROLL_JS = """() => { setTimeout(() => {
  const rows = document.querySelectorAll('#rq-chat .message-row');
  if (rows.length < 2) return;
  const q = rows[rows.length - 2];
  let box = q.parentElement;
  while (box && !/(auto|scroll)/.test(getComputedStyle(box).overflowY)) box = box.parentElement;
  if (box) box.scrollTop += q.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
}, 200); }"""

FONTS = ["Source Sans Pro", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "ui-sans-serif", "system-ui", "sans-serif"]


def theme_colours() -> dict[str, str]:
    """Theme colours raised to WCAG AA contrast (Gradio's defaults give subdued text and placeholders ~2.5:1)."""
    return {
        "body_text_color_subdued": "*neutral_600",
        "body_text_color_subdued_dark": "*neutral_300",
        "input_placeholder_color": "*neutral_500",
        "input_placeholder_color_dark": "*neutral_400",
        "block_label_text_color": "*neutral_600",
        "block_label_text_color_dark": "*neutral_300",
        "block_info_text_color": "*neutral_600",
        "block_info_text_color_dark": "*neutral_300",
        "button_primary_background_fill": "*primary_700",  # white on blue-500 is 3.7:1, on blue-700 6.7:1
        "button_primary_background_fill_hover": "*primary_800",
        "button_primary_background_fill_dark": "*primary_700",
        "button_primary_background_fill_hover_dark": "*primary_800",
        "button_primary_text_color": "white",
        "button_primary_text_color_dark": "white",
    }
