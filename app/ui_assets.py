"""The look of the chat page: its CSS, the head snippet, the scroll script and the fonts."""

CSS = """
.gradio-container { font-family: 'Source Sans Pro', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', ui-sans-serif, system-ui, sans-serif; }
#rq-title h1 { margin-bottom: 0; font-size: 1.5rem; }
#rq-title p { margin-top: .25rem; color: var(--body-text-color-subdued); }
.rq-answer { line-height: 1.6; }
.rq-answer p { margin: .2rem 0 .5rem; }
.rq-lead { font-weight: 600; }
.rq-none { font-weight: 600; color: #9a3412; }
.rq-notice { color: #9a3412; font-size: .9em; }
.rq-differ { border: 1px solid #fcd34d; background: #fffbeb; color: #1f2937; border-radius: 8px; padding: .5rem .7rem; margin: .4rem 0 .8rem; }
.rq-differ-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: .5rem; margin-top: .4rem; }
.rq-differ-item { background: #fff; border: 1px solid #fde68a; border-radius: 6px; padding: .4rem .55rem; font-size: .92em; }
.rq-differ-src { display: block; color: #4b5563; font-size: .85em; }
ol.rq-cites { list-style: none; padding: 0; margin: 0; }
li.rq-cite { border: 1px solid var(--border-color-primary); border-left: 4px solid #2563eb; border-radius: 8px; padding: .55rem .75rem; margin: 0 0 .7rem; background: var(--background-fill-primary); }
.rq-closest li.rq-cite { border-left-color: #9ca3af; }
.rq-head { font-weight: 600; }
.rq-num { display: inline-block; min-width: 1.8em; color: #2563eb; }
.rq-meta { color: var(--body-text-color-subdued); font-size: .85em; margin: .1rem 0 .35rem; }
.rq-passage { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; padding: 0; border: 0; font-size: .95em; }
.rq-answer mark { background: #fde047; color: #111827; padding: 0 .1em; border-radius: 2px; }
.rq-context { margin-top: .35rem; font-size: .9em; }
.rq-context summary { cursor: pointer; color: #2563eb; }
.rq-context-text { white-space: pre-wrap; overflow-wrap: anywhere; color: var(--body-text-color-subdued); margin-top: .3rem; }
.rq-context-text mark.rq-ctx { background: #dbeafe; color: #111827; }
.rq-context-text strong { background: #fde047; font-weight: 600; }
.rq-time { color: #9ca3af; font-size: .75em; margin-top: .2rem; }
#rq-examples button { white-space: normal; text-align: left; }
#rq-footer { color: #9ca3af; font-size: .8em; }
@media (max-width: 640px) {
  #rq-title h1 { font-size: 1.2rem; }
  #rq-title p { font-size: .85rem; }
  #rq-chat .message-row { padding: 8px !important; }
  #rq-chat .message { margin-left: 0 !important; }
  #rq-chat .bot { padding: 2px 4px !important; }
  li.rq-cite { padding: .45rem .55rem; }
  .rq-differ { padding: .4rem .5rem; }
}
"""

# Custom CSS is scoped inside the app's content; the page margins sit outside it.
HEAD = "<style>@media (max-width: 640px) { .gradio-container .main.app { padding: 8px 6px !important; } }</style>"

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
