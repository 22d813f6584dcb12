"""Load: 32 concurrent clients ask different questions through the HTTP `ask` API of a real
`reportqa serve` process; each gets the answer to its own question, nothing fails, and the
server's memory stays flat from one round to the next. The figures go to eval/loadtest_sessions.md
(`reportqa bench --load` writes eval/loadtest.md)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import free_port

from app.answer import answer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 32
TOP_K = 5
ROUNDS, ROUND_S = 3, 2.0  # after one cold round (each question once): about 20 s of load, the machine is shared
MAX_GROWTH_MB = 50
STARTUP_S = 240  # loading torch and the model on a busy machine


def rss_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def ask(client, base: str, question: str) -> dict:
    """One call of the `ask` API over Gradio's REST protocol: post the question, then read the result stream."""
    r = client.post(f"{base}gradio_api/call/ask", json={"data": [question, TOP_K]})
    r.raise_for_status()
    body = client.get(f"{base}gradio_api/call/ask/{r.json()['event_id']}").text
    # server-sent events: heartbeats while the question waits in the queue, then `complete` or `error`
    for block in body.split("\n\n"):
        event, _, data = block.strip().partition("\ndata:")
        if event == "event: complete":
            return json.loads(data)[0]
    raise AssertionError(f"no answer for {question!r}: {body[-300:]!r}")


@pytest.fixture(scope="module")
def questions() -> list[str]:
    lines = (ROOT / "eval" / "questions.jsonl").read_text("utf-8").splitlines()
    qs = [json.loads(line)["question"] for line in lines if line.strip()]
    assert len(set(qs)) == len(qs) >= CLIENTS
    return qs


@pytest.fixture(scope="module")
def server(real_index, tmp_path_factory):
    """`reportqa serve` in its own process, over a copy of the real index; yields (url, pid)."""
    folder = tmp_path_factory.mktemp("served")
    real_index.save(folder / "index")
    port = free_port()
    env = dict(os.environ, REPORTQA_DATA=str(folder / "data"), HF_HUB_OFFLINE="1")
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--index", str(folder / "index"), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/"
    import httpx

    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`reportqa serve` exited with {proc.returncode}: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(base, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`reportqa serve` did not answer within {STARTUP_S} s")
            time.sleep(0.5)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_round(
    base: str, questions: list[str], seconds: float | None, clients: int = CLIENTS
) -> tuple[list[tuple[str, dict, float]], list[str]]:
    """`clients` threads, each with its own connection and its own share of `questions`, asking until
    `seconds` pass, or (`seconds=None`) each of its questions once."""
    import httpx

    results: list[tuple[str, dict, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline: list[float] = []
    start = threading.Barrier(clients, action=lambda: deadline.append(time.monotonic() + (seconds or 0)))

    def client(n: int) -> None:
        mine = questions[n::clients]  # at any moment the clients ask different questions
        with httpx.Client(timeout=120) as c:
            start.wait()
            i = 0
            while i < len(mine) if seconds is None else time.monotonic() < deadline[0]:
                q = mine[i % len(mine)]
                i += 1
                t0 = time.perf_counter()
                try:
                    got = ask(c, base, q)
                except Exception as e:  # noqa: BLE001 - every failure is reported by the test
                    with lock:
                        errors.append(f"{q!r}: {e.__class__.__name__}: {e}")
                    continue
                with lock:
                    results.append((q, got, time.perf_counter() - t0))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def figures(results: list[tuple[str, dict, float]], seconds: float) -> dict:
    latencies = [t for _, _, t in results]
    return {
        "requests": len(results),
        "seconds": round(seconds, 1),
        "requests_per_s": round(len(results) / seconds, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000),
        "p95_ms": round(percentile(latencies, 95) * 1000),
    }


@pytest.mark.model
def test_32_clients_get_their_own_answers_and_memory_stays_flat(server, real_index, questions, capsys):
    from app.ui import SESSIONS

    base, pid = server
    expected = {}
    for q in questions:
        ans = answer(real_index, q, top_k=TOP_K)  # one question at a time, as the server answers them
        expected[q] = (ans.answered, [h.chunk.id for h in ans.hits])

    # Load what the first questions load (the model's first run, word lists, the English dictionary).
    run_round(base, ["学校有多少所？", "How many schools are there?"], None, clients=2)
    # Cold: every question once, new to the server (the model embeds each one).
    t0 = time.perf_counter()
    cold, errors = run_round(base, questions, None)
    cold_s = time.perf_counter() - t0
    assert not errors, errors[:5]
    assert sorted(q for q, _, _ in cold) == sorted(questions)
    # Every call is a new Gradio session, which the server keeps until it holds `SESSIONS` of them (by
    # design: a chat tab's votes live there). Fill them first, so that the rounds measured show the
    # server's steady state rather than the sessions it may still add (~45 KB each).
    fill: list[tuple[str, dict, float]] = []
    while len(cold) + len(fill) < SESSIONS:
        got, errors = run_round(base, questions, None)
        assert not errors, errors[:5]
        fill += got
    rss = [rss_mb(pid)]
    # Warm: the same questions again for a bounded time, as people repeat them.
    warm, warm_s = [], 0.0
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        got, errors = run_round(base, questions, ROUND_S)
        warm_s += time.perf_counter() - t0
        assert not errors, errors[:5]
        warm += got
        rss.append(rss_mb(pid))

    wrong = []
    for q, obj, _ in cold + fill + warm:
        ids = [p["chunk_id"] for p in obj["passages"]]
        if obj["question"] != q or (obj["answered"], ids) != expected[q]:
            wrong.append((q, obj["question"], ids, expected[q]))
    assert not wrong, f"{len(wrong)} answers not for their own question, e.g. {wrong[:2]}"

    cold_f, warm_f = figures(cold, cold_s), figures(warm, warm_s)
    rss_mbs = [round(r) for r in rss]
    growth = max(rss) - rss[0]
    rows = "".join(
        f"| {name} | {f['requests']} | 0 | {f['seconds']} s | {f['requests_per_s']} | {f['p50_ms']} ms | {f['p95_ms']} ms |\n"
        for name, f in (("cold: each question once", cold_f), (f"warm: {ROUNDS} rounds of {ROUND_S:.0f} s", warm_f))
    )
    (ROOT / "eval" / "loadtest_sessions.md").write_text(
        "# Load test: the chat's sessions in memory\n\n"
        f"`tests/test_loadtest.py`: {CLIENTS} concurrent clients, each asking its own share of the {len(questions)} questions "
        f"in eval/questions.jsonl through the HTTP `ask` API (top_k={TOP_K}) of `reportqa serve` over the five-report index, "
        f"on {os.cpu_count()} CPU cores shared with other work. Every answer was checked against `answer()` on the index "
        "for the same question: none was wrong, no request failed. Between the cold and the warm rounds, "
        f"{len(fill)} more calls fill the {SESSIONS} sessions the server keeps, so that the memory figures show its steady state.\n\n"
        "| phase | requests | errors | time | requests/s | p50 latency | p95 latency |\n|---|---|---|---|---|---|---|\n"
        f"{rows}\n"
        f"Server memory (RSS) once the sessions are filled, then after each warm round: {' → '.join(f'{r} MB' for r in rss_mbs)}.\n",
        encoding="utf-8",
    )
    with capsys.disabled():
        print(f"\nload test, {CLIENTS} clients: cold {json.dumps(cold_f)}; warm {json.dumps(warm_f)}; server RSS MB {rss_mbs}")
    assert growth < MAX_GROWTH_MB, f"server memory grew by {growth:.0f} MB over {ROUNDS} rounds: {rss_mbs}"


def test_api_calls_do_not_pile_up_sessions_in_memory(tiny_index, tmp_path):
    """Each call of the HTTP API is a new Gradio session and event; the server keeps only the last
    `sessions` of them, in its state and in Gradio's queue, so memory stays flat under API load."""
    from app import ui

    port = free_port()
    app = ui.launch(tiny_index, port=port, feedback_path=tmp_path / "fb.sqlite3", sessions=50, block=False)
    try:
        base = f"http://127.0.0.1:{port}/"
        questions = [f"长治市校外培训机构{n}所" for n in range(480)]
        _, errors = run_round(base, questions[:120], None, clients=8)  # past the cap, and warm
        assert not errors, errors[:5]
        gc.collect()  # the server shares this process: count what it keeps, not garbage not yet collected
        rss = [rss_mb("self")]
        for r in range(3):
            _, errors = run_round(base, questions[120 + r * 120 : 240 + r * 120], None, clients=8)
            assert not errors, errors[:5]
            gc.collect()
            rss.append(rss_mb("self"))
        queue = app._queue
        assert len(app.state_holder.session_data) <= 50
        assert len(queue.event_analytics) <= 50
        # Gradio keeps 2,000 sessions' message queues and never drops a session's emptied set of events to
        # report: 480 of each without the pruner; with it, the idle ones go past 50 (8 clients: 8 busy at most)
        assert len(queue.pending_messages_per_session) <= 50 + 8 and len(queue.pending_event_ids_session) <= 50 + 8
        # Gradio's defaults (10,000 sessions' state, 2,000 sessions' message queues, 10,000 events' timings,
        # every session's event set) kept ~40 KB a call: 360 calls added 14-16 MB, and 2,160 calls 79 MB.
        # Bounded, these 360 new questions add ~8 MB (the JSON API, the next test, ~1.5 MB), and memory
        # levels: 6,000 new questions in a row grew by 0.4 MB over their last 240; the same 480 asked again
        # and again, by 0.1 MB a round of 240 after 2,400 calls.
        assert max(rss) - rss[0] < 16, f"memory grew over 360 API calls: {[round(x, 1) for x in rss]} MB"
    finally:
        app.close()


def test_sessions_waiting_in_the_queue_survive_the_sweep(tiny_index, tmp_path, monkeypatch):
    """Calls that wait their turn (2 searches at once) while more new sessions than the server keeps
    arrive: the sweep drops idle sessions only, so every call is answered and the queue keeps running
    (Gradio's own queue, its per-session queues capped as low, stopped: "Queue is stopped")."""
    from conftest import call_ask

    from app import ui

    real = ui.answer

    def slow(*args, **kwargs):
        time.sleep(0.6)
        return real(*args, **kwargs)

    monkeypatch.setattr(ui, "answer", slow)
    port = free_port()
    app = ui.launch(tiny_index, port=port, feedback_path=tmp_path / "fb.sqlite3", sessions=2, block=False)
    try:
        got: dict[str, tuple] = {}

        def one(q: str) -> None:
            got[q] = call_ask(port, [q, 3])

        questions = [f"长治市校外培训机构{n}所" for n in range(12)]
        threads = [threading.Thread(target=one, args=(q,)) for q in questions]
        for t in threads:
            t.start()
            time.sleep(0.05)  # the later ones arrive while the first wait or run
        for t in threads:
            t.join(120)
        assert not app._queue.stopped
        assert {q: got.get(q, ("missing",))[0] for q in questions} == dict.fromkeys(questions, "complete")
        assert all(got[q][1][0]["question"] == q for q in questions)
        assert len(app._queue.pending_messages_per_session) <= 2 + len(questions)
    finally:
        app.close()


def wait_finished(queue, ids: list[str]) -> None:
    """Until Gradio's queue holds none of the events `ids` (finished, their results waiting), 60 s at most."""
    deadline = time.monotonic() + 60
    while any(i in queue.event_ids_to_events for i in ids):
        assert time.monotonic() < deadline, "the calls did not finish"
        time.sleep(0.05)


def test_results_never_fetched_are_dropped_after_the_grace(tiny_index, tmp_path, monkeypatch):
    """A client that posts calls to Gradio's HTTP API and never fetches their results: past `sessions`
    entries, once a sweep has seen them finished for the grace period, their sessions leave Gradio's
    queue (without the pruner's grace, every one stays: 30 calls, 30 entries in each dict for good).
    Fetching a dropped result is a 404 at once; results fetched within the grace and later calls are
    answered, and the queue keeps running."""
    import httpx
    from conftest import call_ask

    from app import ui

    grace = 3.0
    monkeypatch.setattr(ui, "UNFETCHED_S", grace)
    pruners: list = []  # the server's, built at its first request
    init = ui._SessionPruner.__init__
    monkeypatch.setattr(ui._SessionPruner, "__init__", lambda self, *a, **kw: (pruners.append(self), init(self, *a, **kw))[1])
    port = free_port()
    app = ui.launch(tiny_index, port=port, feedback_path=tmp_path / "fb.sqlite3", sessions=4, block=False)
    queue = app._queue
    base = f"http://127.0.0.1:{port}/gradio_api/call/ask"

    def fetch(c: httpx.Client, event_id: str) -> str:
        """The result stream of a call as read until the server ends it; a stream still open after 20 s
        (heartbeats every 15 s keep a read timeout from firing) fails the test."""
        got, deadline = [], time.monotonic() + 20
        with c.stream("GET", f"{base}/{event_id}", timeout=10) as r:
            assert r.status_code == 200, r.read()
            for line in r.iter_lines():
                got.append(line)
                assert time.monotonic() < deadline, f"still streaming after 20 s: {got[-4:]}"
        return "\n".join(got)

    try:
        with httpx.Client(timeout=30) as c:
            posted = [c.post(base, json={"data": [f"长治市校外培训机构{n}所", 3]}).json()["event_id"] for n in range(30)]
            wait_finished(queue, posted)
            sizes = [(len(queue.pending_event_ids_session), len(queue.pending_messages_per_session))]
            for _ in range(3):  # sweeps see them, then drop them a grace later
                time.sleep(grace + 0.1)
                assert call_ask(port, ["长治市校外培训机构188所", 3])[0] == "complete"
                sizes.append((len(queue.pending_event_ids_session), len(queue.pending_messages_per_session)))
            assert sizes[0] == (30, 30)  # unfetched and inside the grace: kept
            assert max(sizes[-1]) <= 4, sizes
            t = time.monotonic()
            dropped = c.get(f"{base}/{posted[0]}", timeout=10)
            assert dropped.status_code == 404, dropped.text
            assert dropped.json()["detail"].startswith(f"no call {posted[0]} to fetch: unknown, already fetched, or expired")
            assert time.monotonic() - t < 2  # at once

            # past the limit but inside the grace: results waiting are kept, and fetched
            young = [c.post(base, json={"data": [f"吕梁教师{n}名", 3]}).json()["event_id"] for n in range(6)]
            wait_finished(queue, young)
            (pruner,) = pruners
            pruner.limit = 0  # the next request sweeps, seeing them finished and unfetched
            c.get(f"http://127.0.0.1:{port}/healthz")
            assert pruner.grace == grace and set(young) <= set(pruner.seen)
            assert set(young) <= set(queue.pending_messages_per_session)  # their own sessions (no hash sent)
            for n, event_id in enumerate(young):
                lines = fetch(c, event_id).splitlines()
                assert lines[0] == "event: complete", lines
                assert json.loads(lines[1].removeprefix("data: "))[0]["question"] == f"吕梁教师{n}名"
        assert not queue.stopped
        assert call_ask(port, ["忻州學前教育毛入園率", 3])[0] == "complete"
    finally:
        app.close()


def test_a_fetch_of_an_unknown_or_already_fetched_call_is_a_404(tiny_index, tmp_path, capfd):
    """Fetching the result of a call Gradio's queue does not know (an id never posted, or one whose
    result was fetched already) is a plain 404 with a JSON detail at once: Gradio's own route sends an
    `error` event and cuts the stream (uvicorn logging an ASGI traceback), or streams only heartbeats.
    A call fetched right after it is posted, or once it finished, is answered as before."""
    import uuid

    import httpx
    from conftest import call_ask

    from app import ui

    port = free_port()
    app = ui.launch(tiny_index, port=port, feedback_path=tmp_path / "fb.sqlite3", block=False)
    queue = app._queue
    base = f"http://127.0.0.1:{port}/gradio_api/call/ask"
    message = "to fetch: unknown, already fetched, or expired (unfetched results wait at least 10 minutes; see README)"

    def gone(c: httpx.Client, event_id: str) -> None:
        t = time.monotonic()
        r = c.get(f"{base}/{event_id}", timeout=10)
        assert r.status_code == 404, r.text[:300]
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"detail": f"no call {event_id} {message}"}
        assert time.monotonic() - t < 2  # at once

    try:
        assert call_ask(port, ["长治市校外培训机构188所", 3])[0] == "complete"  # fetched while queued or running
        with httpx.Client(timeout=30) as c:
            gone(c, uuid.uuid4().hex)
            event_id = c.post(base, json={"data": ["吕梁教师", 3]}).json()["event_id"]
            wait_finished(queue, [event_id])  # finished, its result waiting
            body = c.get(f"{base}/{event_id}").text
            assert body.startswith("event: complete\ndata: "), body
            assert json.loads(body.splitlines()[1].removeprefix("data: "))[0]["question"] == "吕梁教师"
            gone(c, event_id)  # fetched already
        assert call_ask(port, ["忻州學前教育毛入園率", 3])[0] == "complete"
        assert not queue.stopped
    finally:
        app.close()
    assert "Traceback" not in capfd.readouterr().err


def test_json_api_calls_keep_memory_flat(tiny_index, tmp_path):
    """The JSON API (what programs are pointed to) answers outside Gradio's event queue: 360 new
    questions after a warm round leave the process within a few MB (measured: ~1.5 MB)."""
    import httpx

    from app import ui

    port = free_port()
    app = ui.launch(tiny_index, port=port, feedback_path=tmp_path / "fb.sqlite3", sessions=50, block=False)
    url = f"http://127.0.0.1:{port}/api/v1/ask"
    questions = [f"长治市校外培训机构{n}所" for n in range(480)]

    def round_of(part: list[str]) -> None:
        errors: list[str] = []

        def client(mine: list[str]) -> None:
            with httpx.Client(timeout=120) as c:
                for q in mine:
                    r = c.post(url, json={"question": q, "top_k": 5})
                    if r.status_code != 200 or r.json()["question"] != q:
                        errors.append(f"{q}: {r.status_code}")

        threads = [threading.Thread(target=client, args=(part[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:5]
        gc.collect()

    try:
        round_of(questions[:120])
        rss = [rss_mb("self")]
        for r in range(3):
            round_of(questions[120 + r * 120 : 240 + r * 120])
            rss.append(rss_mb("self"))
        assert max(rss) - rss[0] < 5, f"memory grew over 360 JSON API calls: {[round(x, 1) for x in rss]} MB"
    finally:
        app.close()
