"""The `reportqa` command: index, add, remove, list, ask, chat, serve, eval.

The library raises `ReportQAError`s; only this module turns them into one line on
stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .errors import ReportQAError
from .extract import Limits


def config(index_dir: Path | None = None):
    """Paths and runtime choices from the environment (only the CLI and bootstrap read it)."""
    from .config import Config

    return Config.from_env(os.environ, index=index_dir)


def make_encoder():
    """e5-small on ONNX Runtime; $REPORTQA_BACKEND=torch or onnx-int8 picks another runtime."""
    return config().encoder()


def default_collection():
    """What an index is built from until it records its own collection: the project's corpus/."""
    from .collection import Collection

    return Collection.of([config().corpus])


def _echo_update(upd, index_dir: Path, quiet: bool = False) -> None:
    for p in upd.problems:
        click.echo(f"warning: {p}", err=True)
    for n in upd.notes:
        click.echo(f"note: {n}", err=True)
    if quiet:
        return
    if not upd.rebuilt:
        click.echo(f"index in {index_dir} is up to date ({len(upd.index.chunks)} passages)", err=True)
    else:
        click.echo(
            f"indexed {len(upd.index.docs)} documents, {len(upd.index.chunks)} passages "
            f"({upd.embedded} embedded, {upd.reused} reused) -> {upd.path}",
            err=True,
        )


def _migrate(cfg, encoder=None) -> None:
    """Once, for the default index: the reports added and removed in $REPORTQA_DATA before each
    index kept its own collection move into that index's collection."""
    if not cfg.is_default_index:
        return
    from .changes import migrate_legacy
    from .progress import progress_bar

    with progress_bar() as progress:
        note = migrate_legacy(cfg.data, cfg.index, encoder or make_encoder(), default=default_collection(), progress=progress)
    if note:
        click.echo(note, err=True)


def open_index(index_dir: Path, threads: int | None = None):
    """The index in `index_dir`, its encoder on `threads` threads a call (None: one per core)."""
    from .index import ReportIndex

    encoder = make_encoder()
    if threads:
        encoder.threads = threads  # read when the model loads, at the first question
    return ReportIndex.load(index_dir, encoder)


def print_answer(ans) -> None:
    if not ans.answered:
        click.echo(f"The reports do not seem to answer this (confidence {ans.confidence:.2f}). Closest passages:")
    elif ans.hits:
        click.echo(f"Confidence that passage [1] answers: {ans.confidence:.2f}")
    if ans.verdict() == "possible":  # answered under an even chance, or refused just under the threshold
        click.echo("Possible answer: the reports may not answer this; check the passages.")
    if ans.notice:
        click.echo(f"({ans.notice})")
    for r, h in enumerate(ans.hits, 1):
        s, e = h.highlight
        t = h.chunk.text
        meta = " · ".join(x for x in (h.doc.city, h.doc.source, h.doc.date) if x)
        page = h.page
        where = f"p. {page}, chars" if page else "chars"
        click.echo(f"\n[{r}] {h.doc.title} ({meta}) {where} {h.chunk.start}-{h.chunk.end}, score {h.score:.4f}")
        click.echo(t[:s] + click.style(t[s:e], bold=True, underline=True) + t[e:])


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ReportQAError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Group)
@click.version_option(package_name="reportqa")
def cli():
    """Cited answers from Chinese regional education reports."""


@cli.command()
@click.option("--corpus", "corpus", multiple=True, type=click.Path(path_type=Path),
              help="Folder of reports or .jsonl file (repeatable): the index's sources from now on (its added reports stay). "
                   "Default: the sources it was built from, else corpus/")  # fmt: skip
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help="Index folder. Default: index/")
@click.option("--if-stale", is_flag=True, help="Only rebuild when the corpus or settings changed.")
@click.option("--store", "store_spec", default=None, metavar="STORE",
              help="Where searches read the passages: `embedded` (FAISS + BM25 in this process), milvus:PATH.db "
                   "(Milvus Lite) or milvus://HOST:19530 (a Milvus server). Default: the index's store, else embedded.")  # fmt: skip
@click.option("--workers", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Embed in this process, or in batches on Ray workers (a local Ray with one worker a core).")  # fmt: skip
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Embed on the Ray cluster at ADDR (ray://HOST:10001, or auto); implies --workers ray.")  # fmt: skip
def index(corpus, index_dir, if_stale, store_spec, workers, ray_address):
    """Build the index from its collection (sources + added - removed), or from folders of documents
    and/or .jsonl corpora given with --corpus."""
    from contextlib import nullcontext

    from . import changes
    from .progress import progress_bar
    from .stores import StoreRef

    cfg = config(index_dir)
    try:
        store = StoreRef.of(store_spec, cfg.index) if store_spec is not None else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--store") from None
    if store is not None:
        store.check()  # an unreachable Milvus is said before hours of embedding
    encoder = make_encoder()
    _migrate(cfg, encoder)
    with ray_encoder(encoder, ray_address) if workers == "ray" or ray_address else nullcontext(encoder) as enc:
        with progress_bar() as progress:
            if corpus:
                upd = changes.build_from(list(corpus), cfg.index, enc, if_stale=if_stale, keep_added=True, progress=progress,
                                         store=store)  # fmt: skip
            else:
                upd = changes.rebuild(cfg.index, enc, default=default_collection(), if_stale=if_stale, progress=progress,
                                      store=store)  # fmt: skip
    _echo_update(upd, cfg.index)
    if upd.index.store_ref is not None:
        click.echo(f"searched through {upd.index.store_ref.spec} (collection {upd.index.store_ref.collection})", err=True)


def ray_encoder(encoder, address: str | None):
    """`encoder` with its passages embedded on Ray: workers load the same model (e5 from its cache
    folder, or another encoder class made anew), questions stay in this process."""
    from .distributed import RayEncoder

    if hasattr(encoder, "cache_dir") and hasattr(encoder, "backend"):
        return RayEncoder(encoder, model_dir=encoder.cache_dir, backend=encoder.backend, address=address)
    return RayEncoder(encoder, encoder_factory=type(encoder), address=address)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="Title (one file only). Default: the document's own title, else its first line.")
@click.option("--city", help="City the report is about. Default: guessed from the text.")
@click.option("--date", help="Date of the report. Default: the document's own date, if it has one.")
@click.option("--source", help="Publisher or source shown in citations.")
@click.option("--url", help="Link shown on the citation's title.")
@click.option("--replace", is_flag=True, help="Update a report added before under the same id.")
@click.option("--max-chars", type=click.IntRange(1), default=Limits.max_chars, show_default=True,
              help="Refuse a report with more characters of text than this.")  # fmt: skip
@click.option("--max-ratio", type=click.FloatRange(1), default=Limits.max_ratio, show_default=True,
              help="Refuse a .docx whose parts expand more than this many times when unzipped (a zip bomb).")  # fmt: skip
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help="Index folder. Default: index/")
def add(files, title, city, date, source, url, replace, max_chars, max_ratio, index_dir):
    """Add report FILES (.txt .md .html .pdf .docx, or a .jsonl corpus) and update the index.

    Only the new passages are embedded. Added reports are kept in the index's own collection
    (inside its build) and stay indexed across `reportqa index` and restarts.
    """
    from . import changes
    from .progress import progress_bar

    cfg = config(index_dir)
    encoder = make_encoder()
    _migrate(cfg, encoder)
    meta = {"title": title, "city": city, "date": date, "source": source, "url": url}
    with progress_bar() as progress:
        change = changes.add(cfg.index, list(files), meta, replace=replace, encoder=encoder, progress=progress,
                             limits=Limits(max_chars, max_ratio))  # fmt: skip
    upd = change.update
    for p in upd.problems:
        click.echo(f"warning: {p}", err=True)
    counts = upd.index.passage_counts()
    for d in change.docs:
        about = " · ".join(x for x in (d.city, d.date, f"{len(d.pages)} pages" if d.pages else "") if x)
        n = counts.get(d.id, 0)
        click.echo(f"added {d.id} {d.title!r} ({about}): {n} passage{'' if n == 1 else 's'}")
    click.echo(f"embedded {upd.embedded} passages, reused {upd.reused}; the index holds {len(upd.index.docs)} reports -> {upd.path}")


@cli.command()
@click.argument("doc_id")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help="Index folder. Default: index/")
def remove(doc_id, index_dir):
    """Remove report DOC_ID (see `reportqa list`) and its passages from the index.

    An added report is deleted from the index's collection; a report of its sources (corpus/)
    is listed as removed there and left out from then on (the file stays): `reportqa index
    --corpus PATH`, which sets the sources anew, brings it back.
    """
    from . import changes
    from .progress import progress_bar

    cfg = config(index_dir)
    encoder = make_encoder()
    _migrate(cfg, encoder)
    with progress_bar() as progress:
        change = changes.remove(cfg.index, doc_id, encoder=encoder, progress=progress)
    upd = change.update
    for p in upd.problems:
        click.echo(f"warning: {p}", err=True)
    note = " (a report of the index's sources: listed as removed, its file stays)" if change.kind == "corpus" else ""
    click.echo(f"removed {doc_id}{note}")
    click.echo(f"embedded {upd.embedded} passages, reused {upd.reused}; the index holds {len(upd.index.docs)} reports -> {upd.path}")


@cli.command("list")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help="Index folder. Default: index/")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per report.")
def list_cmd(index_dir, as_json):
    """List the indexed reports: id, city, date, passages, title."""
    idx = open_index(config(index_dir).index)
    counts = idx.passage_counts()
    docs = sorted(idx.docs.values(), key=lambda d: d.id)
    for d in docs:
        row = {"id": d.id, "title": d.title, "city": d.city, "date": d.date, "passages": counts.get(d.id, 0),
               "pages": len(d.pages), "source": d.source}  # fmt: skip
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
    if not as_json:
        width = max([_width(d.id) for d in docs] + [2])
        click.echo(f"{_pad('id', width)}  {_pad('city', 4)}  {'date':<10}  {'passages':>8}  title")
        for d in docs:
            click.echo(f"{_pad(d.id, width)}  {_pad(d.city or '-', 4)}  {d.date or '-':<10}  {counts.get(d.id, 0):>8}  {d.title}")


def _width(text: str) -> int:
    """Terminal columns: a Chinese character takes two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _search_options(command):
    """The options `ask` and `chat` share: the mode and the filters."""
    for option in reversed([
        click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid", show_default=True),
        click.option("--city", default="", help="Only passages of reports about this city (e.g. 长治)."),
        click.option("--report", default="", help="Only passages of this report id (see `reportqa list`)."),
        click.option("--from", "date_from", default="", metavar="DATE",
                     help="Only reports dated from DATE (2024, 2024-09, 2024-09-01); undated ones are kept."),
        click.option("--to", "date_to", default="", metavar="DATE", help="Only reports dated up to DATE; undated ones are kept."),
    ]):  # fmt: skip
        command = option(command)
    return command


def _check_report(idx, report: str) -> None:
    if report and report not in idx.docs:
        raise ReportQAError(f"no report with id {report}; `reportqa list` shows the ids")


def print_searched(ans) -> None:
    """What a follow-up was searched as, when it was rewritten."""
    if ans.rewritten:
        click.echo(f"Searched for: {ans.searched}")


@cli.command()
@click.argument("question", required=False)
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None)
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question.")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSONL file of {id, question}; a line may add "history": [earlier questions, oldest first].')  # fmt: skip
@_search_options
def ask(question, index_dir, top_k, as_json, questions, mode, city, report, date_from, date_to):
    """Answer QUESTION (or every line of --questions) with cited passages.

    A line of --questions with a "history" is a follow-up read with those earlier questions; a line
    whose history is not a list of strings gets an error line naming the field (the others are
    answered, and the exit status is 1)."""
    if (question is None) == (questions is None):  # `ask ""` is an (empty) question, answered like one
        raise click.UsageError("give either a QUESTION or --questions FILE.jsonl")
    from .answer import HistoryError, answer_many, check_history, date_range
    from .records import Answer

    date_range(date_from, date_to)  # a bad date is said before the index is opened
    idx = open_index(config(index_dir).index)
    items: list[tuple[str | None, str, list | None]] = []
    bad: dict[int, tuple[str, HistoryError]] = {}  # item -> (where, what is wrong with its history)
    if questions:
        for n, line in enumerate(questions.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                qid, text, history = obj.get("id"), str(obj["question"]), obj.get("history")
            except (ValueError, KeyError, AttributeError) as e:
                raise ReportQAError(f"{questions}:{n}: each line must be a JSON object with id and question ({e})") from e
            try:
                check_history(history)
            except HistoryError as e:
                bad[len(items)] = (f"{questions}:{n}", e)
            items.append((qid, text, history))
    else:
        items.append((None, question, None))
    _check_report(idx, report)
    good = [i for i in range(len(items)) if i not in bad]
    found = answer_many(idx, [items[i][1] for i in good], histories=[items[i][2] for i in good], top_k=top_k, mode=mode,
                        city=city, report=report, date_from=date_from, date_to=date_to)  # fmt: skip
    answers = dict(zip(good, found))
    for i, (qid, text, _) in enumerate(items):
        ans = answers.get(i)
        if ans is None:
            where, e = bad[i]
            if as_json:
                # every key of an answer object (none answered), plus what was wrong and where
                refused = Answer(text, [], False, 0.0, notice=f"not answered: {e}").to_json(qid)
                click.echo(json.dumps(refused | {"error": f"{where}: {e}", "field": e.field}, ensure_ascii=False))
            else:
                click.echo(f"error: {where}: {e}", err=True)
        elif as_json:
            click.echo(json.dumps(ans.to_json(qid), ensure_ascii=False))
        else:
            print_searched(ans)
            print_answer(ans)
    if bad:
        raise ReportQAError(f"{len(bad)} line{'s' if len(bad) > 1 else ''} of {questions} not answered: "
                            "give each history as a list of strings (the earlier questions, oldest first)")  # fmt: skip


@cli.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None)
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per answer (that of `ask --json`).")
@_search_options
def chat(index_dir, top_k, as_json, mode, city, report, date_from, date_to):
    """A conversation in the terminal: each line read is a question, answered like `reportqa ask`.

    A follow-up ("那吕梁呢？", "专任教师呢？", "What about Xinzhou?") is searched merged with the
    questions before it, and the answer says what was searched. Type /typed to search your last
    message as typed instead, /new to start a new conversation; end with Ctrl-D (or /quit).
    """
    from .answer import MAX_HISTORY, answer, date_range

    date_range(date_from, date_to)
    idx = open_index(config(index_dir).index)
    _check_report(idx, report)
    stdin = click.get_text_stream("stdin")
    interactive = stdin.isatty()
    history: list[str] = []
    if interactive:
        click.echo("Ask about the reports; follow-ups are read with the earlier questions. /typed, /new, /quit.", err=True)
    while True:
        if interactive:
            click.echo("> ", nl=False, err=True)
        line = stdin.readline()
        if not line:
            break
        message = line.strip()
        if not message:
            continue
        if message in ("/quit", "/exit"):
            break
        if message == "/new":
            history = []
            click.echo("(a new conversation)", err=as_json)  # --json: stdout holds answer objects only
            continue
        typed = message == "/typed"
        if typed and not history:
            click.echo("(nothing to search as typed yet)", err=as_json)
            continue
        question = history[-1] if typed else message
        earlier = [] if typed else history
        ans = answer(idx, question, history=earlier, top_k=top_k, mode=mode, city=city, report=report, date_from=date_from,
                     date_to=date_to)  # fmt: skip
        if not typed:
            history = [*history, question][-MAX_HISTORY:]
        if as_json:
            click.echo(json.dumps(ans.to_json(), ensure_ascii=False))
            continue
        print_searched(ans)
        if ans.rewritten:
            click.echo("(type /typed to search your words as typed)")
        print_answer(ans)
        click.echo("")


@cli.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7860, show_default=True, type=int)
@click.option("--allow-add", is_flag=True,
              help="Offer the panel to add and remove reports beyond this machine too; it then asks for the key.")  # fmt: skip
@click.option("--api-key", envvar="REPORTQA_API_KEY", default=None, show_envvar=True,
              help="Key for the JSON API, MCP and the add/remove panel, sent as `Authorization: Bearer KEY`; "
                   "with it every API and MCP call needs it. Required to serve beyond 127.0.0.1.")  # fmt: skip
@click.option("--no-query-cache", is_flag=True, hidden=True, help="Embed every question, even one asked before (bench --load).")
def serve(index_dir, host, port, allow_add, api_key, no_query_cache):
    """Serve, on one port, the chat at /, the JSON API at /api/v1 (docs at /api/v1/docs) and MCP at /mcp.

    On 127.0.0.1 (the default) they answer this machine only and the chat can also add and
    remove reports. Any other --host needs --api-key.
    """
    from .api import check_bind
    from .ui import launch

    api_key = api_key or None  # an empty $REPORTQA_API_KEY is no key
    check_bind(host, api_key)  # before loading anything
    from .model import SERVE_THREADS

    cfg = config(index_dir)
    _migrate(cfg)
    index = open_index(cfg.index, SERVE_THREADS)  # questions come at once: one core each
    if no_query_cache:
        index.encoder.cache_size = 0
    launch(index, host=host, port=port, index_dir=cfg.index, allow_add=allow_add, feedback_path=cfg.feedback,
           api_key=api_key, echo=click.echo)  # fmt: skip


@cli.command("mcp")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None)
@click.option("--encoder", "encoder_class", default=None, hidden=True, help="MODULE:NAME of an encoder class instead of e5-small (tests).")
def mcp_cmd(index_dir, encoder_class):
    """Serve search_reports, list_reports and get_report over MCP on stdio, for an agent host."""
    import importlib

    from .index import ReportIndex
    from .live import LiveIndex
    from .mcp_server import run_stdio

    cfg = config(index_dir)
    if encoder_class:
        module, _, name = encoder_class.partition(":")
        encoder = getattr(importlib.import_module(module), name)()
    else:
        encoder = make_encoder()
    run_stdio(LiveIndex(ReportIndex.load(cfg.index, encoder), cfg.index).get)  # nothing may be printed to stdout before this


@cli.command("eval")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None)
@click.option("--external/--no-external", default=False, help="Also run the DRCD and CMRC benchmarks.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder for report.md and the chart. Default: eval/")
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Change a search setting for this run (repeatable), e.g. --set city_first=false: an ablation.")  # fmt: skip
@click.option("--answer-line", is_flag=True,
              help="Only measure the answer line (exact match on figure questions) and the conflict panel; with --external on CMRC and DRCD too.")  # fmt: skip
def eval_cmd(questions, index_dir, external, out, overrides, answer_line):
    """Measure retrieval: hit@k, MRR@10, nDCG@10 per mode and category."""
    from .evaluate import run_eval
    from .index import SearchSettings

    if answer_line:
        from .answerline_eval import run

        given = [name for name, v in (("--questions", questions), ("--index", index_dir), ("--out", out), ("--set", overrides)) if v]
        if given:
            raise click.UsageError(f"--answer-line measures the shipped reports and questions only: drop {', '.join(given)}")
        cfg = config()
        run(cfg.root, cfg.root / "eval" / "cache", make_encoder(), external=external, echo=click.echo)
        return
    try:
        settings = SearchSettings().overridden(overrides)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--set") from None
    cfg = config()
    run_eval(
        questions or cfg.root / "eval" / "questions.jsonl",
        index_dir,
        out or cfg.root / "eval",
        root=cfg.root,
        encoder=make_encoder(),
        external=external,
        settings=settings,
        echo=click.echo,
    )


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to write. Default: app/models/trust.json (the one searches use)")  # fmt: skip
@click.option("--benchmarks", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of drcd_dev.json and cmrc2018_trial.json. Default: ../shared/benchmarks")  # fmt: skip
@click.option(
    "--limit", type=click.IntRange(1), default=None, help="Only the first N questions of each benchmark (a quick check)."
)
@click.option("--spread", "spread_fits", type=click.IntRange(0, 20), default=0, show_default=True,
              help="Also fit N copies of the data whose features move by their last bits and print how far each "
                   "out-of-fold figure moves (as `reportqa eval --external` does with 4; about 40 s a fit).")  # fmt: skip
def train(out, benchmarks, limit, spread_fits):
    """Rebuild the learned reranker and answerability model from the shipped data (seeded, reproducible)."""
    from .train import format_spread, format_summary, save_json
    from .train import train as run_train
    from .trust import SHIPPED

    cfg = config()
    bench = benchmarks or cfg.root.parent / "shared" / "benchmarks"
    for f in ("drcd_dev.json", "cmrc2018_trial.json"):
        if not (bench / f).exists():
            raise ReportQAError(f"{bench / f} not found: pass --benchmarks FOLDER holding drcd_dev.json and cmrc2018_trial.json")
    out = out or SHIPPED
    cache = cfg.root / "eval" / "cache" / (f"limit-{limit}" if limit else "")  # a subset never replaces the full indexes
    result = run_train(cfg.root, bench, cache, make_encoder(), out, echo=lambda m: click.echo(m, err=True),
                       limit=limit, spread_fits=spread_fits)  # fmt: skip
    save_json(out.with_name(out.stem + ".summary.json"), result)
    click.echo(format_summary(result))
    if result.get("spread"):
        click.echo("\n" + format_spread(result["spread"]))
    click.echo(f"wrote {out} ({result['bytes']:,} bytes, sha256 {result['sha256'][:12]})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option("--quick", is_flag=True, help="Smaller run: a quarter of the benchmark corpus, 200 questions, growth up to 10^5.")
@click.option("--load", is_flag=True,
              help="Instead: 32 clients against a warm `reportqa serve` on this machine, through the JSON API and the "
                   "chat's Gradio `ask`, against the in-process rate; writes eval/loadtest.md.")  # fmt: skip
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help="With --load: the index served.")
@click.option("--clients", type=click.IntRange(1, 512), default=32, show_default=True, help="With --load: concurrent clients.")
@click.option("--seconds", type=click.FloatRange(0.5), default=6.0, show_default=True,
              help="With --load: seconds per endpoint and round.")  # fmt: skip
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True, help="With --load: rounds.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --load: the Markdown written. Default: eval/loadtest.md")  # fmt: skip
def bench(as_json, quick, load, index_dir, clients, seconds, rounds, out):
    """Measure indexing rate, query latency, cold start, memory and index growth (see eval/performance.md);
    with --load, the served endpoints under concurrent clients (see eval/loadtest.md)."""
    if load:
        _bench_load(as_json, index_dir, clients, seconds, rounds, out)
        return
    from .bench import format_table, run_bench

    result = run_bench(make_encoder(), config().root, quick=quick, echo=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(result, ensure_ascii=False) if as_json else format_table(result))


def _bench_load(as_json, index_dir, clients, seconds, rounds, out) -> None:
    """`bench --load`: both cases, uncached (every question runs the model) then cached, each on a fresh server."""
    import time

    from .loadtest import bench_load, format_load

    cfg = config(index_dir)
    questions = [json.loads(line)["question"] for line in (cfg.root / "eval" / "questions.jsonl").read_text("utf-8").splitlines()
                 if line.strip()]  # fmt: skip
    from .model import SERVE_THREADS

    index = open_index(cfg.index, SERVE_THREADS)  # the in-process reference searches as the server does
    results = []
    for cached in (False, True):
        click.echo(f"{'cached' if cached else 'uncached'}: {clients} clients, {rounds} rounds of {seconds:g} s", err=True)
        results.append(bench_load(index, cfg.index, questions, clients=clients, seconds=seconds, rounds=rounds,
                                  query_cache=cached, echo=lambda m: click.echo(m, err=True)))  # fmt: skip
    command = "reportqa bench --load" + ("" if (clients, seconds, rounds) == (32, 6.0, 3) else
                                         f" --clients {clients} --seconds {seconds:g} --rounds {rounds}")  # fmt: skip
    command += f" --index {index_dir}" if index_dir else ""
    text = format_load(results, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), command=command)
    path = out or cfg.root / "eval" / "loadtest.md"
    path.write_text(text, encoding="utf-8")
    click.echo(json.dumps(results, ensure_ascii=False) if as_json else text)
    click.echo(f"wrote {path}", err=True)


@cli.command("bench-stores", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench_stores(args):
    """The figures behind the Milvus store and Ray embedding (eval/performance.md); `--help` lists the options."""
    from .store_bench import main as run

    run(list(args), config())


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
