"""The `reportqa` command: index, ask, serve, eval.

The library raises `ReportQAError`s; only this module turns them into one line on
stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .errors import ReportQAError

MAX_QUESTION = 2000  # characters kept of a question; e5 reads at most 512 tokens


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def default_cache() -> Path:
    """Where the dequantised model lives: $REPORTQA_CACHE, else ~/.cache/reportqa."""
    env = os.environ.get("REPORTQA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "reportqa"


def make_encoder():
    from .model import Embedder

    return Embedder(default_cache() / "models")


def prepare_question(q: str) -> tuple[str, str]:
    """Strip control characters and cut very long questions; returns (question, notice).

    Lone surrogates (bytes a terminal in another encoding passed through argv) go too:
    they cannot be written out as UTF-8.
    """
    cleaned = "".join(
        ch for ch in q if (ch in "\n\t" or ord(ch) >= 32 and ch != "\x7f") and not "\ud800" <= ch <= "\udfff"
    ).strip()
    if len(cleaned) > MAX_QUESTION:
        return cleaned[:MAX_QUESTION], f"question cut to its first {MAX_QUESTION} characters"
    return cleaned, ""


def build_index(corpus: list[Path], index_dir: Path, *, if_stale: bool = False, quiet: bool = False, encoder=None):
    """Load, clean, chunk, embed and save; reuses vectors of unchanged passages."""
    from tqdm import tqdm

    from .index import BuildSettings, ReportIndex
    from .load import load_corpus

    docs, problems = load_corpus(corpus)
    for p in problems:
        click.echo(f"warning: {p}", err=True)
    if not docs:
        raise ReportQAError(f"no readable documents in {', '.join(map(str, corpus))}: add .txt/.md/.html reports or a .jsonl corpus")
    encoder = encoder or make_encoder()
    settings = BuildSettings()
    reuse = {}
    try:
        old = ReportIndex.load(index_dir, encoder, verify=False)
        from .index import corpus_fingerprint

        if if_stale and old.fingerprint == corpus_fingerprint(docs) and old.build_settings == settings:
            if not quiet:
                click.echo(f"index in {index_dir} is up to date ({len(old.chunks)} passages)", err=True)
            return old
        if old.build_settings == settings:
            reuse = old.vector_cache()
    except ReportQAError:
        pass
    bar = tqdm(total=0, unit="passage", desc="embedding", disable=quiet, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    index = ReportIndex.build(docs, encoder, settings, progress=progress, reuse=reuse)
    bar.close()
    path = index.save(index_dir)
    if not quiet:
        click.echo(f"indexed {len(index.docs)} documents, {len(index.chunks)} passages -> {path}", err=True)
    return index


def open_index(index_dir: Path):
    from .index import ReportIndex

    return ReportIndex.load(index_dir, make_encoder())


def print_answer(ans) -> None:
    if not ans.answered:
        click.echo("The reports do not seem to answer this. Closest passages:")
    if ans.notice:
        click.echo(f"({ans.notice})")
    for r, h in enumerate(ans.hits, 1):
        s, e = h.highlight
        t = h.chunk.text
        meta = " · ".join(x for x in (h.doc.city, h.doc.source, h.doc.date) if x)
        click.echo(f"\n[{r}] {h.doc.title} ({meta}) chars {h.chunk.start}-{h.chunk.end}, score {h.score:.4f}")
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
@click.option("--corpus", "corpus", multiple=True, type=click.Path(path_type=Path), help="Folder of reports or .jsonl file (repeatable). Default: corpus/")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help="Index folder. Default: index/")
@click.option("--if-stale", is_flag=True, help="Only rebuild when the corpus or settings changed.")
def index(corpus, index_dir, if_stale):
    """Build the index from folders of documents and/or .jsonl corpora."""
    root = project_root()
    build_index(list(corpus) or [root / "corpus"], index_dir or root / "index", if_stale=if_stale)


def _answer_settings():
    from .index import SearchSettings

    return SearchSettings()


@cli.command()
@click.argument("question", required=False)
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None)
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question.")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="JSONL file of {id, question}.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid", show_default=True)
def ask(question, index_dir, top_k, as_json, questions, mode):
    """Answer QUESTION (or every line of --questions) with cited passages."""
    if (question is None) == (questions is None):  # `ask ""` is an (empty) question, answered like one
        raise click.UsageError("give either a QUESTION or --questions FILE.jsonl")
    idx = open_index(index_dir or project_root() / "index")
    items: list[tuple[str | None, str]] = []
    if questions:
        for n, line in enumerate(questions.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                items.append((obj.get("id"), str(obj["question"])))
            except (ValueError, KeyError, AttributeError) as e:
                raise ReportQAError(f"{questions}:{n}: each line must be a JSON object with id and question ({e})") from e
    else:
        items.append((None, question))
    prepared = [prepare_question(q) for _, q in items]
    empty = [i for i, (q, _) in enumerate(prepared) if not q]
    answers = idx.search_many([q or "?" for q, _ in prepared], top_k=top_k, mode=mode, settings=_answer_settings())
    for i, ((qid, _), (q, notice), ans) in enumerate(zip(items, prepared, answers)):
        if i in empty:
            # Searched as "?" so the batch stays aligned; report the question as asked.
            ans.question, ans.hits, ans.answered = q, [], False
            ans.notice = "empty question: type a question about the reports"
        elif notice:
            ans.notice = notice
        if as_json:
            click.echo(json.dumps(ans.to_json(qid), ensure_ascii=False))
        else:
            print_answer(ans)


@cli.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7860, show_default=True, type=int)
def serve(index_dir, host, port):
    """Serve the chat UI and the `ask` API."""
    from .ui import launch

    launch(open_index(index_dir or project_root() / "index"), host=host, port=port)


@cli.command("eval")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None)
@click.option("--external/--no-external", default=False, help="Also run the DRCD and CMRC benchmarks.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder for report.md and the chart. Default: eval/")
def eval_cmd(questions, index_dir, external, out):
    """Measure retrieval: hit@k, MRR@10, nDCG@10 per mode and category."""
    from .evaluate import run_eval

    root = project_root()
    run_eval(
        questions or root / "eval" / "questions.jsonl",
        index_dir or root / "index",
        out or root / "eval",
        encoder=make_encoder(),
        external=external,
        echo=click.echo,
    )


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
