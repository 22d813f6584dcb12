"""`reportqa bench`: indexing throughput, query latency, cold start, memory and index growth, in one run.

Every figure that has a natural reference is given against it, measured in the same run:
the indexing pipeline against the model's own encode rate on the same texts, and search
latency against the cost of embedding the question alone. Growth uses synthetic vectors
drawn around the real passage vectors of the run (same mean and covariance), with real
question vectors as queries, so the approximate index's recall means something.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .index import EXACT_LIMIT, IVF_NPROBE, BuildSettings, ReportIndex, context_text, dense_index
from .records import Document

MODES = ("keyword", "dense", "hybrid")
COLD_QUESTION = "长治市有多少所校外培训机构纳入了全国平台管理？"
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
QUICK_SIZES = (10_000, 100_000)
FULL_SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)


# ---------------------------------------------------------------------- small helpers


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux /proc; else the peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(seconds: Sequence[float]) -> dict:
    ms = 1000 * np.asarray(seconds, dtype=np.float64)
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "n": int(len(ms))}


def machine() -> dict:
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "")
    except OSError:
        pass
    ram = 0.0
    try:
        ram = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1]) / 2**20
    except (OSError, StopIteration):
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for dist in ("numpy", "faiss-cpu", "onnxruntime", "torch", "sentence-transformers", "transformers"):
        try:  # from the metadata: importing torch just to print its version would swell the RSS measured
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "ram_gib": round(ram, 1), "platform": platform.platform(), "versions": versions,
            "load_avg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}  # fmt: skip


def encoder_info(encoder) -> dict:
    info = {"name": encoder.name, "dim": encoder.dim, "backend": getattr(encoder, "backend", type(encoder).__name__),
            "batch_size": getattr(encoder, "batch_size", None)}  # fmt: skip
    if info["backend"] == "torch" and "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


@contextmanager
def no_query_cache(encoder):
    """Time the model, not the cache: turn the query cache off for the block."""
    size = getattr(encoder, "cache_size", None)
    if size is not None:
        encoder.cache_size = 0
    try:
        yield
    finally:
        if size is not None:
            encoder.cache_size = size


def raw_encode(encoder, texts: list[str]) -> np.ndarray:
    """The model's own encode on exactly the strings the pipeline embeds (prompt included)."""
    from .model import PASSAGE_PROMPT

    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "encode"):  # a stand-in encoder: its passages() is all there is
        return encoder.passages(texts)
    return model.encode([PASSAGE_PROMPT + t for t in texts], batch_size=encoder.batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)  # fmt: skip


def count_tokens(encoder, texts: list[str]) -> int | None:
    """Tokens the model reads for `texts` (prompt and special tokens included), when the encoder has a tokenizer."""
    from .model import PASSAGE_PROMPT

    tok = getattr(getattr(encoder, "_model", None), "tokenizer", None)
    if tok is None:
        return None
    prompted = [PASSAGE_PROMPT + t for t in texts]
    if hasattr(tok, "encode_batch"):  # tokenizers.Tokenizer of the ONNX backend: truncates, pads
        return sum(sum(e.attention_mask) for e in tok.encode_batch(prompted))
    return sum(len(ids) for ids in tok(prompted, truncation=True, max_length=512)["input_ids"])


def chunk_texts(docs: list[Document], settings: BuildSettings) -> list[str]:
    from .chunk import chunk_document

    return [context_text(c, d, settings) for d in docs for c in chunk_document(d, settings.chunk_size, settings.chunk_overlap)]


# ---------------------------------------------------------------------- corpora and questions


def corpora(root: Path, quick: bool) -> list[tuple[str, list[Document], BuildSettings, list[str]]]:
    """(name, documents, settings, questions): the five reports and one external benchmark corpus."""
    from .evaluate import load_questions, load_squad
    from .load import load_corpus

    docs, _ = load_corpus([root / "corpus"])
    qs = [q.question for f in ("questions.jsonl", "heldout.jsonl") if (root / "eval" / f).exists() for q in load_questions(root / "eval" / f)]
    out = [("reports", docs, BuildSettings(), qs)]
    squad = root.parent / "shared" / "benchmarks" / "cmrc2018_trial.json"
    if squad.exists():
        bdocs, bqs = load_squad(squad, "cmrc2018")
        if quick:  # a quarter of the paragraphs, and only their questions
            bdocs = bdocs[:64]
            keep = {d.id for d in bdocs}
            bqs = [q for q in bqs if q.doc_id in keep]
        # as `reportqa eval --external` builds it: the paragraphs have no city or title to prefix
        out.append(("cmrc2018", bdocs, BuildSettings(context=False), [q.question for q in bqs]))
    return out


def pad_questions(own: list[str], others: list[str], n: int) -> list[str]:
    """`own` first, then `others`, cycled if needed, up to `n` questions."""
    seen = set(own)
    pool = own + [q for q in others if q not in seen]
    return [pool[i % len(pool)] for i in range(n)] if pool else []


# ---------------------------------------------------------------------- stages


def bench_indexing(name: str, docs: list[Document], settings: BuildSettings, encoder, folder: Path, rounds: int) -> tuple[dict, ReportIndex]:
    """Pipeline (chunk, embed, BM25, save) against raw encode of the same texts; best of `rounds` each."""
    texts = chunk_texts(docs, settings)
    best_raw = best_build = math.inf
    index = None
    for _ in range(rounds):  # interleaved, so a busy moment on the machine hits both alike
        t0 = time.perf_counter()
        raw_encode(encoder, texts)
        best_raw = min(best_raw, time.perf_counter() - t0)
        t0 = time.perf_counter()
        index = ReportIndex.build(docs, encoder, settings)
        index.save(folder)
        best_build = min(best_build, time.perf_counter() - t0)
    n = len(index.chunks)
    raw_rate, build_rate = n / best_raw, n / best_build
    row = {"corpus": name, "documents": len(docs), "chunks": n, "chars_per_chunk": round(float(np.mean([len(t) for t in texts])), 1),
           "raw_encode_chunks_per_s": raw_rate, "pipeline_chunks_per_s": build_rate, "ratio": build_rate / raw_rate,
           "raw_s": best_raw, "pipeline_s": best_build, "rounds": rounds}  # fmt: skip
    tokens = count_tokens(encoder, texts)
    if tokens:
        row["tokens"] = tokens
        row["raw_encode_tokens_per_s"] = tokens / best_raw
    return row, index


def bench_latency(name: str, index: ReportIndex, questions: list[str], encoder) -> dict:
    """Per question, one at a time as a user asks: embedding alone, then each mode, with the query cache off."""
    times: dict[str, list[float]] = {"embed": [], **{m: [] for m in MODES}}
    from .answer import answer, answer_many

    with no_query_cache(encoder):
        answer_many(index, questions[:3], top_k=5)  # warm-up: lazy imports, jieba, the translation table
        for q in questions:
            t0 = time.perf_counter()
            encoder.queries([q])
            times["embed"].append(time.perf_counter() - t0)
            for m in MODES:
                t0 = time.perf_counter()
                answer(index, q, top_k=5, mode=m)
                times[m].append(time.perf_counter() - t0)
    cached, fused = [], []
    if getattr(encoder, "cache_size", 0):
        from .index import SearchSettings

        plain = SearchSettings(rerank=False)  # the fused order and the hand-set confidence
        answer_many(index, questions, top_k=5)  # fill the cache
        for q in questions:  # the question's vector cached: what the search itself costs, interleaved
            t0 = time.perf_counter()
            answer(index, q, top_k=5)
            cached.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            answer(index, q, top_k=5, settings=plain)
            fused.append(time.perf_counter() - t0)
    row: dict = {"corpus": name, "chunks": len(index.chunks), "questions": len(questions)}
    for k, v in times.items():
        row[k] = percentiles(v)
    if cached:
        row["hybrid_repeated"] = percentiles(cached)
        row["fused_repeated"] = percentiles(fused)
        # what the learned reranker and answerability model add to a question (target: <= 3 ms p50)
        row["rerank_added_p50_ms"] = row["hybrid_repeated"]["p50_ms"] - row["fused_repeated"]["p50_ms"]
    row["hybrid_over_embed_p50"] = row["hybrid"]["p50_ms"] / row["embed"]["p50_ms"] if row["embed"]["p50_ms"] else None
    return row


def _peak_rss_mb(pid: int) -> float:
    """High-water RSS of a live process (VmHWM: reset at exec, unlike a child's ru_maxrss, which counts the parent it forked from)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def bench_cold_start(index_dir: Path, runs: int, backend: str | None) -> dict:
    """`python -m app ask` in a fresh process against a prebuilt index: wall time to the answer, and peak RSS."""
    env = dict(os.environ)
    if backend:
        env["REPORTQA_BACKEND"] = backend
    cmd = [sys.executable, "-m", "app", "ask", COLD_QUESTION, "--index", str(index_dir), "--json"]
    walls, peaks = [], []
    for _ in range(runs):
        peak = 0.0
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(Path(__file__).resolve().parent.parent))
            while p.poll() is None:  # sample the child's high-water mark until it exits
                peak = max(peak, _peak_rss_mb(p.pid))
                time.sleep(0.02)
            walls.append(time.perf_counter() - t0)
            out.seek(0)
            err.seek(0)
            if p.returncode != 0:
                return {"error": err.read().decode(errors="replace")[-500:]}
            json.loads(out.read().decode().splitlines()[0])  # it did answer
        peaks.append(peak)
    return {"runs": runs, "wall_s": walls, "wall_s_median": float(np.median(walls)), "peak_rss_mb": max(peaks),
            "backend": backend, "command": " ".join(cmd[1:4]) + " QUESTION --index DIR --json"}  # fmt: skip


def synthetic_vectors(seeds: np.ndarray, n: int, rng: np.random.Generator, spread: float = 0.3, block: int = 100_000) -> np.ndarray:
    """`n` unit vectors around the real `seeds`, with the seeds' mean and covariance.

    x = mu + sqrt(1 - spread) (s - mu) + sqrt(spread) * noise, noise ~ N(0, cov(seeds)): each
    point sits near a real passage, and pairs are as similar as real pairs (e5 vectors share a
    large common direction). spread=0.3 gives the neighbour similarities of DRCD's own vectors.
    """
    seeds = np.asarray(seeds, np.float64)
    mu = seeds.mean(0)
    w, v = np.linalg.eigh(np.cov(seeds.T) if len(seeds) > 1 else np.eye(seeds.shape[1]))
    root = (v * np.sqrt(np.clip(w, 0, None))).T.astype(np.float32)  # z @ root ~ N(0, cov)
    seeds, mu = seeds.astype(np.float32), mu.astype(np.float32)
    out = np.empty((n, seeds.shape[1]), np.float32)
    for s in range(0, n, block):
        m = min(block, n - s)
        pick = seeds[rng.integers(0, len(seeds), m)]
        z = rng.standard_normal((m, seeds.shape[1]), dtype=np.float32)
        x = mu + math.sqrt(1 - spread) * (pick - mu) + math.sqrt(spread) * (z @ root)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _search_times(index, queries: np.ndarray, k: int) -> list[float]:
    times = []
    for i in range(len(queries)):
        t0 = time.perf_counter()
        index.search(queries[i : i + 1], k)
        times.append(time.perf_counter() - t0)
    return times


def recall_at(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(a[:k]) & set(e[:k])) / k for a, e in zip(approx_ids, exact_ids, strict=True)]))


def bench_growth(seeds: np.ndarray, queries: np.ndarray, sizes: Sequence[int], candidates: int, echo: Callable) -> list[dict]:
    """Exact (flat) and IVF search at each size: build time, latency, memory, and IVF recall@10 per nprobe."""
    import faiss

    rng = np.random.default_rng(0)
    queries = np.ascontiguousarray(queries, np.float32)
    rows = []
    for n in sizes:
        base = rss_mb()
        t0 = time.perf_counter()
        vecs = synthetic_vectors(seeds, n, rng)
        gen_s = time.perf_counter() - t0
        k = min(candidates, n)
        t0 = time.perf_counter()
        flat = dense_index(vecs, exact_limit=n)
        flat_build = time.perf_counter() - t0
        flat_rss = rss_mb() - base
        _, exact_ids = flat.search(queries, 10)
        flat_times = _search_times(flat, queries, k)
        echo(f"growth {n}: vectors {gen_s:.1f}s, exact built {flat_build:.1f}s, p50 {1000 * np.median(flat_times):.2f} ms")
        del flat
        before = rss_mb()
        t0 = time.perf_counter()
        ivf = dense_index(vecs, exact_limit=0)
        ivf_build = time.perf_counter() - t0
        ivf_rss = rss_mb() - before
        ivf_ivf = faiss.extract_index_ivf(ivf)
        sweep = []
        for nprobe in NPROBES:
            if nprobe > ivf_ivf.nlist:
                break
            ivf_ivf.nprobe = nprobe
            _, ids = ivf.search(queries, 10)
            t = _search_times(ivf, queries, k)
            sweep.append({"nprobe": nprobe, "recall@10": recall_at(ids, exact_ids), **percentiles(t)})
        ivf_ivf.nprobe = min(IVF_NPROBE, ivf_ivf.nlist)
        _, ids = ivf.search(queries, 10)
        chosen = {"nprobe": ivf_ivf.nprobe, "recall@10": recall_at(ids, exact_ids), **percentiles(_search_times(ivf, queries, k))}
        echo(f"growth {n}: IVF nlist {ivf_ivf.nlist} built {ivf_build:.1f}s, nprobe {chosen['nprobe']}: "
             f"recall@10 {chosen['recall@10']:.3f}, p50 {chosen['p50_ms']:.2f} ms")  # fmt: skip
        d = vecs.shape[1]
        rows.append({
            "n": n, "dim": d, "queries": len(queries), "k": k, "auto": "exact" if n <= EXACT_LIMIT else "ivf",
            "exact": {"build_s": flat_build, "bytes": n * d * 4, "rss_delta_mb": flat_rss, **percentiles(flat_times)},
            "ivf": {"nlist": ivf_ivf.nlist, "build_s": ivf_build, "bytes": n * (d * 4 + 8) + ivf_ivf.nlist * d * 4,
                    "rss_delta_mb": ivf_rss, "default": chosen, "sweep": sweep},
        })  # fmt: skip
        del ivf, ivf_ivf, vecs
    return rows


# ---------------------------------------------------------------------- the run


def run_bench(encoder, root: Path, *, quick: bool = False, growth_sizes: Sequence[int] | None = None, n_questions: int | None = None,
              cold_start: bool = True, echo: Callable = print) -> dict:  # fmt: skip
    """Run every stage and return one JSON-ready dict (see `format_table`)."""
    sizes = list(growth_sizes or (QUICK_SIZES if quick else FULL_SIZES))
    nq = n_questions or (200 if quick else 500)
    rounds = 1 if quick else 2
    result: dict = {"quick": quick, "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reportqa-bench-") as tmp:
        sets = corpora(root, quick)
        # Load once, as a serving process does; the cold-start figure covers this separately.
        t0 = time.perf_counter()
        getattr(encoder, "model", None)
        from .keyword import tokenize

        tokenize("预热")
        result["warm_up_s"] = time.perf_counter() - t0
        result["encoder"] = encoder_info(encoder)
        indexing, latency, indexes = [], [], {}
        for name, docs, settings, _ in sets:
            echo(f"indexing {name}: {len(docs)} documents ...")
            # a small corpus takes seconds a round: more rounds steady its best time
            row, idx = bench_indexing(name, docs, settings, encoder, Path(tmp) / name, rounds + 2 * (len(docs) < 50))
            indexing.append(row)
            indexes[name] = idx
            echo(f"indexing {name}: {row['chunks']} chunks, pipeline {row['pipeline_chunks_per_s']:.1f}/s, raw encode {row['raw_encode_chunks_per_s']:.1f}/s, ratio {row['ratio']:.2f}")
        result["indexing"] = indexing
        all_qs = [q for *_, qs in sets for q in qs]
        for name, _, _, qs in sets:
            questions = pad_questions(qs, all_qs, nq)
            echo(f"latency {name}: {len(questions)} questions ...")
            row = bench_latency(name, indexes[name], questions, encoder)
            latency.append(row)
            echo(f"latency {name}: embed p50 {row['embed']['p50_ms']:.1f} ms, hybrid p50 {row['hybrid']['p50_ms']:.1f} ms (x{row['hybrid_over_embed_p50']:.2f})")
            if "rerank_added_p50_ms" in row:
                echo(f"latency {name}: reranking and answerability add {row['rerank_added_p50_ms']:.2f} ms p50")
        result["latency"] = latency
        result["serving_rss_mb"] = rss_mb()  # this process: model, both indexes, the query cache
        if cold_start and getattr(encoder, "backend", None):
            echo("cold start ...")
            result["cold_start"] = bench_cold_start(Path(tmp) / "reports", 1 if quick else 3, encoder.backend)
        else:
            result["cold_start"] = {"skipped": "needs the real model (a stand-in encoder cannot be started in another process)"}
        seeds = np.concatenate([idx.vectors for idx in indexes.values()])
        queries = encoder.queries(pad_questions(all_qs, [], min(nq, 200)))
        indexes.clear()
        result["growth"] = bench_growth(seeds, queries, sizes, candidates=50, echo=echo)
    result["exact_limit"] = EXACT_LIMIT
    result["total_s"] = time.perf_counter() - t_start
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# ---------------------------------------------------------------------- report


def _md(rows: list[list], head: list[str]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def format_table(r: dict) -> str:
    """The run as Markdown tables, targets beside the ratios."""
    m = r["machine"]
    e = r["encoder"]
    parts = [f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM; encoder backend {e['backend']}, batch {e['batch_size']}"
             + (f", {e['torch_threads']} torch threads" if e.get("torch_threads") else "") + f"; load average at start {m.get('load_avg_at_start')}."]  # fmt: skip
    parts += ["", "Indexing (target: pipeline >= 0.90 x raw encode)", ""]
    parts.append(_md([[x["corpus"], x["chunks"], f"{x['raw_encode_chunks_per_s']:.1f}", f"{x['pipeline_chunks_per_s']:.1f}", f"{x['ratio']:.2f}",
                       f"{x['raw_encode_tokens_per_s']:.0f}" if "raw_encode_tokens_per_s" in x else ""]
                      for x in r["indexing"]], ["corpus", "chunks", "raw encode chunks/s", "pipeline chunks/s", "ratio", "raw encode tokens/s"]))  # fmt: skip
    parts += ["", "Query latency, ms p50 / p95 (target: hybrid p50 <= 1.2 x embedding the question)", ""]
    rows = []
    for x in r["latency"]:
        cells = [x["corpus"], x["questions"]] + [f"{x[k]['p50_ms']:.1f} / {x[k]['p95_ms']:.1f}" for k in ("embed", *MODES)]
        cells.append(f"{x['hybrid_over_embed_p50']:.2f}")
        cells.append(f"{x['hybrid_repeated']['p50_ms']:.1f}" if "hybrid_repeated" in x else "")
        cells.append(f"{x['fused_repeated']['p50_ms']:.1f} / +{x['rerank_added_p50_ms']:.2f}" if "rerank_added_p50_ms" in x else "")
        rows.append(cells)
    parts.append(_md(rows, ["corpus", "questions", "embed only", "keyword", "dense", "hybrid", "hybrid/embed p50", "hybrid, repeated question p50",
                          "without reranking p50 / reranking adds (target <= 3 ms)"]))
    c = r["cold_start"]
    parts += [""]
    if "wall_s" in c:
        parts.append(f"Cold start (target < 15 s): `{c['command']}` {c['wall_s_median']:.1f} s median of {c['runs']} "
                     f"({', '.join(f'{w:.1f}' for w in c['wall_s'])}), peak RSS {c['peak_rss_mb']:.0f} MiB. "
                     f"Bench process while serving both indexes: {r['serving_rss_mb']:.0f} MiB RSS.")  # fmt: skip
    else:
        parts.append(f"Cold start: {c.get('skipped') or c.get('error')}")
    parts += ["", f"Growth (synthetic vectors, {r['growth'][0]['queries'] if r['growth'] else 0} real questions, k = {r['growth'][0]['k'] if r['growth'] else ''}; "
              f"the index switches to IVF above {r['exact_limit']:,} chunks)", ""]  # fmt: skip
    rows = []
    for g in r["growth"]:
        x, v = g["exact"], g["ivf"]
        d = v["default"]
        rows.append([f"{g['n']:,}", f"{x['build_s']:.1f}", f"{x['p50_ms']:.2f} / {x['p95_ms']:.2f}", f"{x['bytes'] / 2**20:.0f}",
                     f"{v['nlist']}", f"{v['build_s']:.1f}", d["nprobe"], f"{d['p50_ms']:.2f} / {d['p95_ms']:.2f}", f"{d['recall@10']:.3f}",
                     f"{v['bytes'] / 2**20:.0f}", g["auto"]])  # fmt: skip
    parts.append(_md(rows, ["chunks", "exact build s", "exact ms p50/p95", "exact MiB", "IVF nlist", "IVF build s", "nprobe",
                            "IVF ms p50/p95", "IVF recall@10", "IVF MiB", "auto"]))  # fmt: skip
    parts += ["", "IVF recall@10 / p50 ms by nprobe:", ""]
    probes = sorted({s["nprobe"] for g in r["growth"] for s in g["ivf"]["sweep"]})
    parts.append(_md([[f"{g['n']:,}"] + [next((f"{s['recall@10']:.3f} / {s['p50_ms']:.2f}" for s in g["ivf"]["sweep"] if s["nprobe"] == p), "")
                                          for p in probes] for g in r["growth"]], ["chunks"] + [f"nprobe {p}" for p in probes]))  # fmt: skip
    parts += ["", f"Total {r['total_s']:.0f} s; peak RSS of the bench process {r['peak_rss_mb']:.0f} MiB."]
    return "\n".join(parts)
