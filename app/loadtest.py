"""Load on the JSON API (`reportqa bench --load`): many clients asking at once, against the rate
of the same questions answered in this process.

`run_load(base_url, questions)` runs `clients` threads, each with its own keep-alive connection
(http.client) and its own share of `questions`, for `seconds`, and returns requests/s, p50, p95,
errors and, given `expected`, the answers that differ from it. `in_process_rate(index, questions)`
is the reference: `answer(...)` called directly, one thread or several. `bench_load` does both
against a server started in its own process (`python -m app.loadtest --serve`), so the clients
do not share the server's interpreter.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .answer import answer

if TYPE_CHECKING:
    from .index import ReportIndex

VOLATILE = ("seconds", "searched", "id")  # what may differ between two answers to one question


def comparable(obj: dict) -> dict:
    """An answer's JSON without what changes from one run to the next (its time)."""
    return {k: v for k, v in obj.items() if k not in VOLATILE}


def expected_answers(index: ReportIndex, questions: Sequence[str], top_k: int = 5) -> dict[str, dict]:
    """The in-process answer to each question, as the API returns it (less its time)."""
    return {q: comparable(answer(index, q, top_k=top_k).to_json()) for q in questions}


def percentile(values: Sequence[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else 0.0


def in_process_rate(index: ReportIndex, questions: Sequence[str], *, seconds: float = 5.0, top_k: int = 5,
                    threads: int = 1) -> dict:  # fmt: skip
    """Questions answered a second by `answer` called directly from `threads` threads for `seconds`."""
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def work(n: int) -> None:
        mine = list(questions[n::threads]) or list(questions)
        i = 0
        while time.perf_counter() < deadline:
            answer(index, mine[i % len(mine)], top_k=top_k)
            i += 1
        counts[n] = i

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    took = time.perf_counter() - t0
    return {"threads": threads, "requests": sum(counts), "seconds": round(took, 2),
            "requests_per_s": round(sum(counts) / took, 1), "ms_per_question": round(1000 * took * threads / max(sum(counts), 1), 1)}  # fmt: skip


def run_load(base_url: str, questions: Sequence[str], *, clients: int = 32, seconds: float = 10.0, top_k: int = 5,
             expected: dict[str, dict] | None = None, api_key: str | None = None, timeout: float = 60.0) -> dict:  # fmt: skip
    """`clients` concurrent clients asking `questions` (each its own share, in turn) through
    POST /api/v1/ask for `seconds`: requests/s, p50 and p95 latency, errors and mismatches."""
    return load_figures([_load(base_url, questions, clients, seconds, top_k, expected, api_key, timeout)])


def load_figures(rounds: Sequence[dict]) -> dict:
    """The figures of one or more rounds of `_load` taken together."""
    latencies = [t for r in rounds for t in r["latencies"]]
    errors = [e for r in rounds for e in r["errors"]]
    mismatches = [m for r in rounds for m in r["mismatches"]]
    took = sum(r["seconds"] for r in rounds)
    return {
        "clients": rounds[0]["clients"] if rounds else 0,
        "requests": len(latencies),
        "seconds": round(took, 2),
        "requests_per_s": round(len(latencies) / took, 1) if took else 0.0,
        "p50_ms": round(1000 * percentile(latencies, 50), 1),
        "p95_ms": round(1000 * percentile(latencies, 95), 1),
        "max_ms": round(1000 * max(latencies, default=0.0), 1),
        "errors": len(errors),
        "error_examples": errors[:5],
        "mismatches": len(mismatches),
        "mismatch_examples": mismatches[:5],
    }


def _load(base_url: str, questions: Sequence[str], clients: int, seconds: float, top_k: int, expected: dict | None,
          api_key: str | None, timeout: float) -> dict:  # fmt: skip
    url = urlsplit(base_url)
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {api_key}"} if api_key else {})
    latencies: list[float] = []
    errors: list[str] = []
    mismatches: list[str] = []
    lock = threading.Lock()
    deadline: list[float] = []
    start = threading.Barrier(clients, action=lambda: deadline.append(time.perf_counter() + seconds))

    def client(n: int) -> None:
        mine = list(questions[n::clients]) or list(questions)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        mine_lat, mine_err, mine_bad = [], [], []
        start.wait()
        i = 0
        while time.perf_counter() < deadline[0]:
            q = mine[i % len(mine)]
            i += 1
            body = json.dumps({"question": q, "top_k": top_k}, ensure_ascii=False).encode()
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/ask", body, headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                mine_err.append(f"{q!r}: {type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
                continue
            mine_lat.append(time.perf_counter() - t0)
            if resp.status != 200:
                mine_err.append(f"{q!r}: HTTP {resp.status}: {data[:200]!r}")
                continue
            if expected is not None:
                got = json.loads(data)
                if comparable(got) != expected.get(q) or got.get("searched") != got.get("question"):
                    mine_bad.append(q)
        conn.close()
        with lock:
            latencies.extend(mine_lat)
            errors.extend(mine_err)
            mismatches.extend(mine_bad)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    return {"clients": clients, "seconds": took, "latencies": latencies, "errors": errors, "mismatches": mismatches}


def wait_healthy(base_url: str, timeout: float = 240.0, proc: subprocess.Popen | None = None) -> None:
    """Until GET /healthz answers 200 (the server has loaded its index)."""
    url = urlsplit(base_url)
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the API server exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API server at {base_url} did not answer within {timeout:.0f} s")
        time.sleep(0.3)


def warm(base_url: str, questions: Sequence[str], top_k: int = 5) -> None:
    """Each question once, one at a time: the server loads its model and caches what a first question loads."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=240)
    for q in questions:
        conn.request(
            "POST", "/api/v1/ask", json.dumps({"question": q, "top_k": top_k}).encode(), {"Content-Type": "application/json"}
        )
        conn.getresponse().read()
    conn.close()


def bench_load(index: ReportIndex, index_dir: Path, questions: Sequence[str], *, clients: int = 32, seconds: float = 6.0,
               rounds: int = 3, threads: int = 2, top_k: int = 5, query_cache: bool = True, port: int | None = None,
               env: dict | None = None, echo=print) -> dict:  # fmt: skip
    """The API served by another process over `index_dir` (which holds `index`), loaded by
    `clients`, next to `index` answering the same questions in this process.

    The machine may be shared, so the two alternate: each of `rounds` rounds answers in process
    (one thread, then two, `seconds / 2` each) and then through the API (`seconds`); the rates
    are over all rounds, the reference being the better of one and two threads. Without
    `query_cache`, neither process keeps question vectors: every question runs the model, as a
    question nobody asked before does; with it, the repeated questions skip the model and the
    HTTP layer's own cost shows.
    """
    from .api import THREADS
    from .bench import no_query_cache

    if port is None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "app.loadtest", "--serve", "--index", str(index_dir), "--port", str(port),
           "--threads", str(threads if threads is not None else THREADS)] + ([] if query_cache else ["--no-query-cache"])  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent, env=env or dict(os.environ))
    local: dict[int, list[dict]] = {1: [], 2: []}
    loads: list[dict] = []
    try:
        with contextlib.nullcontext() if query_cache else no_query_cache(index.encoder):
            expected = expected_answers(index, questions, top_k)  # also warms this process, as the server is warmed below
            wait_healthy(base, proc=proc)
            echo(f"warming the server: {len(questions)} questions once")
            warm(base, questions, top_k)
            for n in range(rounds):
                for t in local:
                    local[t].append(in_process_rate(index, questions, seconds=seconds / 2, top_k=top_k, threads=t))
                loads.append(_load(base, questions, clients, seconds, top_k, expected, None, 60.0))
                echo(f"round {n + 1}: in process {[r[-1]['requests_per_s'] for r in local.values()]} /s, "
                     f"API {len(loads[-1]['latencies']) / loads[-1]['seconds']:.1f} /s")  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    in_process = {}
    for t, rs in local.items():
        done, took = sum(r["requests"] for r in rs), sum(r["seconds"] for r in rs)
        in_process[t] = {"threads": t, "requests": done, "seconds": round(took, 2), "requests_per_s": round(done / took, 1),
                         "per_round": [r["requests_per_s"] for r in rs]}  # fmt: skip
    api = load_figures(loads) | {"per_round": [round(len(r["latencies"]) / r["seconds"], 1) for r in loads]}
    best = max(r["requests_per_s"] for r in in_process.values())
    return {"in_process": in_process, "api": api, "server_threads": threads, "query_cache": query_cache, "cores": os.cpu_count(),
            "ratio_to_in_process": round(api["requests_per_s"] / best, 2) if best else None}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """`python -m app.loadtest --serve --index DIR --port N [--threads T]`: the API alone, for `bench_load`.
    The entry point reads the environment (the configured model), as the CLI does."""
    import argparse

    from .api import THREADS, create_api
    from .config import Config
    from .index import ReportIndex
    from .live import LiveIndex

    parser = argparse.ArgumentParser(prog="python -m app.loadtest")
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--no-query-cache", action="store_true", help="embed every question, even one asked before")
    args = parser.parse_args(argv)
    import uvicorn

    cfg = Config.from_env(os.environ, index=args.index)
    encoder = cfg.encoder()
    if args.no_query_cache:
        encoder.cache_size = 0
    live = LiveIndex(ReportIndex.load(cfg.index, encoder), cfg.index)
    app = create_api(live.get, threads=args.threads)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":  # pragma: no cover
    main()
