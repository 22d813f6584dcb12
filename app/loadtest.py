"""Load on `reportqa serve` (`reportqa bench --load`): many clients asking at once, through the
JSON API and through the chat's Gradio `ask` endpoint, against the rate of the same questions
answered in this process.

`run_load(base_url, questions)` runs `clients` threads, each with its own keep-alive connection
(http.client) and its own share of `questions`, for `seconds`, and returns requests/s, p50, p95,
errors and, given `expected`, the answers that differ from it; `endpoint="gradio"` asks through
Gradio's REST protocol (post the question, then read the event stream of its result) instead of
POST /api/v1/ask. `in_process_rate(index, questions)` is the reference: `answer(...)` called
directly, one thread or several. `bench_load` does all three against the serve process's own
launch path started in its own process (`reportqa serve`), so the clients do not
share the server's interpreter; `format_load` writes the figures as Markdown.
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


ENDPOINTS = ("api", "gradio")


def run_load(base_url: str, questions: Sequence[str], *, clients: int = 32, seconds: float = 10.0, top_k: int = 5,
             expected: dict[str, dict] | None = None, api_key: str | None = None, timeout: float = 60.0,
             endpoint: str = "api") -> dict:  # fmt: skip
    """`clients` concurrent clients asking `questions` (each its own share, in turn) through
    POST /api/v1/ask (or the chat's Gradio `ask`, `endpoint="gradio"`) for `seconds`:
    requests/s, p50 and p95 latency, errors and mismatches."""
    return load_figures([_load(base_url, questions, clients, seconds, top_k, expected, api_key, timeout, endpoint)])


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


class CallFailed(Exception):
    """An answer that did not come: its HTTP status and what the server said."""


def _ask_api(conn: http.client.HTTPConnection, question: str, top_k: int, headers: dict, session: str = "") -> dict:
    body = json.dumps({"question": question, "top_k": top_k}, ensure_ascii=False).encode()
    conn.request("POST", "/api/v1/ask", body, headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise CallFailed(f"HTTP {resp.status}: {data[:200]!r}")
    got = json.loads(data)
    if got.get("searched") != got.get("question"):
        raise CallFailed(f"searched {got.get('searched')!r}, not the question")
    return got


def _ask_gradio(conn: http.client.HTTPConnection, question: str, top_k: int, headers: dict, session: str = "") -> dict:
    """One call of the chat's `ask` over Gradio's REST protocol: post the question, then read its event stream.

    With `session`, the calls of one client share a Gradio session, as those of one `gradio_client.Client`
    do; without, each call is a new session, whose state the server builds (~10 ms for the chat's page)."""
    body = json.dumps({"data": [question, top_k]} | ({"session_hash": session} if session else {}), ensure_ascii=False).encode()
    conn.request("POST", "/gradio_api/call/ask", body, headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise CallFailed(f"HTTP {resp.status}: {data[:200]!r}")
    conn.request("GET", f"/gradio_api/call/ask/{json.loads(data)['event_id']}")
    resp = conn.getresponse()
    stream = resp.read().decode("utf-8", "replace")
    for block in stream.split("\n\n"):  # heartbeats while the question waits in the queue, then `complete` or `error`
        event, _, payload = block.strip().partition("\ndata:")
        if event == "event: complete":
            return json.loads(payload)[0]
    raise CallFailed(f"HTTP {resp.status}, no answer in the stream: {stream[-200:]!r}")


def _load(base_url: str, questions: Sequence[str], clients: int, seconds: float, top_k: int, expected: dict | None,
          api_key: str | None, timeout: float, endpoint: str = "api") -> dict:  # fmt: skip
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {ENDPOINTS}, not {endpoint!r}")
    ask = _ask_api if endpoint == "api" else _ask_gradio
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
        session = f"loadtest-{os.getpid()}-{n}-{time.monotonic_ns()}"  # one Gradio session a client
        mine_lat, mine_err, mine_bad = [], [], []
        start.wait()
        i = 0
        while time.perf_counter() < deadline[0]:
            q = mine[i % len(mine)]
            i += 1
            t0 = time.perf_counter()
            try:
                got = ask(conn, q, top_k, headers, session)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                mine_err.append(f"{q!r}: {type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
                continue
            except CallFailed as e:
                mine_lat.append(time.perf_counter() - t0)
                mine_err.append(f"{q!r}: {e}")
                continue
            mine_lat.append(time.perf_counter() - t0)
            if expected is not None and comparable(got) != expected.get(q):
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


TARGETS = {"ratio_to_in_process": 0.7, "p95_ms": 1000.0, "gradio_requests_per_s": 25.0}
P95_NOTE = (
    "Each client waits for its answer before asking again, so the mean wait is about clients / rate (Little's law): "
    "with 32 clients, a p95 under 1 s needs the server to answer well over 32 questions a second, a rate the "
    "uncached search reaches only when no other work holds the cores (compare the in-process rate of the same run "
    "and the load average)."
)


def bench_load(index: ReportIndex, index_dir: Path, questions: Sequence[str], *, clients: int = 32, seconds: float = 6.0,
               rounds: int = 3, top_k: int = 5, query_cache: bool = True, port: int | None = None,
               env: dict | None = None, echo=print) -> dict:  # fmt: skip
    """`reportqa serve`'s launch path, run by another process over `index_dir` (which holds
    `index`), loaded by `clients` through the JSON API and then through the chat's Gradio `ask`,
    next to `index` answering the same questions in this process; every answer is compared with
    the in-process one.

    The machine may be shared, so they take turns: each of `rounds` rounds answers in process
    (one thread, then two, `seconds / 2` each), then through the API and through Gradio
    (`seconds` each); the rates are over all rounds, the reference being the better of one and
    two threads. Without `query_cache`, neither process keeps question vectors: every question
    runs the model, as a question nobody asked before does; with it, repeated questions skip
    the model and the HTTP layer's own cost shows. The load average is recorded before and after.
    """
    from .api import THREADS
    from .bench import no_query_cache
    from .ui import CONCURRENCY

    if port is None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "app", "serve", "--index", str(index_dir), "--port", str(port)]
    cmd += [] if query_cache else ["--no-query-cache"]
    load_before = os.getloadavg()
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent, env=env or dict(os.environ),
                            stdout=subprocess.DEVNULL)  # its "serving on" lines; errors still reach stderr  # fmt: skip
    local: dict[int, list[dict]] = {1: [], 2: []}
    loads: dict[str, list[dict]] = {e: [] for e in ENDPOINTS}
    try:
        with contextlib.nullcontext() if query_cache else no_query_cache(index.encoder):
            expected = expected_answers(index, questions, top_k)  # also warms this process, as the server is warmed below
            wait_healthy(base, proc=proc)
            echo(f"warming the server: {len(questions)} questions once")
            warm(base, questions, top_k)
            run_load(base, questions[:4], clients=2, seconds=0.5, top_k=top_k, endpoint="gradio")  # Gradio's queue started
            for n in range(rounds):
                for t in local:
                    local[t].append(in_process_rate(index, questions, seconds=seconds / 2, top_k=top_k, threads=t))
                for e in ENDPOINTS:
                    loads[e].append(_load(base, questions, clients, seconds, top_k, expected, None, 60.0, e))
                echo(f"round {n + 1}: in process {[r[-1]['requests_per_s'] for r in local.values()]} /s, "
                     + ", ".join(f"{e} {len(r[-1]['latencies']) / r[-1]['seconds']:.1f} /s" for e, r in loads.items()))  # fmt: skip
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
    out = {e: load_figures(rs) | {"per_round": [round(len(r["latencies"]) / r["seconds"], 1) for r in rs]} for e, rs in loads.items()}
    best = max(r["requests_per_s"] for r in in_process.values())
    result = {"in_process": in_process, "api": out["api"], "gradio": out["gradio"], "clients": clients, "questions": len(questions),
              "rounds": rounds, "seconds": seconds, "api_threads": THREADS, "gradio_concurrency": CONCURRENCY,
              "query_cache": query_cache, "cores": os.cpu_count(),
              "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
              "ratio_to_in_process": round(out["api"]["requests_per_s"] / best, 2) if best else None}  # fmt: skip
    return result | {"met": targets_met(result)}


def targets_met(result: dict) -> dict[str, bool]:
    """Issue #16's targets, one by one: the API at >= 0.7x in process with p95 <= 1 s, no errors,
    every answer identical; the chat's Gradio `ask` at >= 25 requests/s, no errors, identical."""
    api, gradio = result["api"], result["gradio"]
    return {
        "api_ratio": (result["ratio_to_in_process"] or 0) >= TARGETS["ratio_to_in_process"],
        "api_p95": api["p95_ms"] <= TARGETS["p95_ms"],
        "api_no_errors": api["errors"] == 0 and api["mismatches"] == 0,
        "gradio_rate": gradio["requests_per_s"] >= TARGETS["gradio_requests_per_s"],
        "gradio_no_errors": gradio["errors"] == 0 and gradio["mismatches"] == 0,
    }


def format_load(results: Sequence[dict], *, when: str = "", command: str = "reportqa bench --load") -> str:
    """eval/loadtest.md: one table row per case and endpoint, the targets, and the load on the machine."""
    lines = ["# Load test: `reportqa serve` under 32 clients", ""]
    if results:
        r0 = results[0]
        lines += [
            f"`{command}`{f' ({when})' if when else ''}: the serve process's launch path (`ui.launch`: JSON API, "
            f"MCP and the chat on one port) in its own process on 127.0.0.1, {r0['clients']} client threads in the bench "
            f"process, each on its own keep-alive connection, asking its own share of the {r0['questions']} questions of "
            f"eval/questions.jsonl (top_k=5), {r0['rounds']} round{'s' if r0['rounds'] != 1 else ''} of {r0['seconds']:g} s per endpoint, taking turns with "
            f"`answer()` called in the bench process (1 thread, then 2). Every answer is compared with the in-process one. "
            f"Server: {r0['api_threads']} API search threads, Gradio `ask` concurrency {r0['gradio_concurrency']}; "
            f"{r0['cores']} cores.",
            "",
            "| case | endpoint | requests/s | per round | in process, best (1 / 2 threads) | ratio | p50 | p95 | max | errors | mismatches |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in results:
        case = "cached" if r["query_cache"] else "uncached"
        ip = r["in_process"]
        best = max(v["requests_per_s"] for v in ip.values())
        ref = f"{best} /s ({ip[1]['requests_per_s']} / {ip[2]['requests_per_s']})"
        for e in ENDPOINTS:
            f = r[e]
            ratio = f["requests_per_s"] / best if best else 0
            lines.append(f"| {case} | {'JSON API' if e == 'api' else 'Gradio ask'} | {f['requests_per_s']} | "
                         f"{', '.join(str(x) for x in f['per_round'])} | {ref} | {ratio:.2f} | {f['p50_ms']:.0f} ms | "
                         f"{f['p95_ms']:.0f} ms | {f['max_ms']:.0f} ms | {f['errors']} | {f['mismatches']} |")  # fmt: skip
    lines += ["", "Targets (issue #16): JSON API >= 0.7x in process, p95 <= 1 s, no errors, every answer identical; "
              "Gradio `ask` >= 25 requests/s.", ""]  # fmt: skip
    for r in results:
        case = "cached" if r["query_cache"] else "uncached"
        met = r["met"]
        missed = [k for k, v in met.items() if not v]
        la = r["load_average"]
        lines.append(f"* {case}: {'all met' if not missed else 'missed: ' + ', '.join(missed)}. "
                     f"Load average (1, 5, 15 min) before {la['before']}, after {la['after']}.")  # fmt: skip
    lines += [
        "",
        "*Uncached*: neither process keeps question vectors, so every question runs e5, as a new question does. "
        "*Cached*: repeated questions skip the model, so the HTTP layer's own cost shows.",
        "",
        P95_NOTE,
        "",
        "How the API's search pool was sized, and the earlier runs with the API served alone: "
        "[api_load.md](api_load.md). Memory of the chat's sessions under load (`tests/test_loadtest.py`): "
        "[loadtest_sessions.md](loadtest_sessions.md).",
        "",
    ]
    return "\n".join(lines)
