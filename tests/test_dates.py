"""The date filter (from / to) beside city and report: in `answer`, the chat, the JSON API and the
CLI; reports without a date are kept and marked; a bad date is refused naming the field. On the
tiny index, where report a is dated 2024-01-01 and b and c have no date."""

from __future__ import annotations

import json

import pytest
from conftest import Tags
from fastapi.testclient import TestClient

from app import ui
from app.answer import UNDATED_NOTICE, DateError, answer, date_range, date_span
from app.api import PREFIX, create_api
from app.cli import cli

Q = "长治市有多少所校外培训机构纳入了全国平台管理？"


def docs(ans) -> set[str]:
    return {h.doc.id for h in ans.hits}


@pytest.mark.parametrize(
    "text, span",
    [("2024", ("2024-01-01", "2024-12-31")), ("2024-09", ("2024-09-01", "2024-09-30")), ("2024-02", ("2024-02-01", "2024-02-29")),
     ("2024-04-18", ("2024-04-18", "2024-04-18")), ("2024年9月", ("2024-09-01", "2024-09-30")), ("", None), ("未知", None),
     ("2023-02-29", None), ("2024-13", None)],
)  # fmt: skip
def test_a_date_names_its_first_and_last_day(text, span):
    assert date_span(text) == span


def test_a_date_range_is_checked_and_names_the_field():
    assert date_range() is None and date_range("", "") is None
    assert date_range("2024-05") == ("2024-05-01", "9999-12-31") and date_range("", "2024") == ("0000-01-01", "2024-12-31")
    for args, field in ((("2024-13",), "date_from"), (("", "soon"), "date_to"), (("2024-01-05x",), "date_from"),
                        (("2025", "2024"), "date_from")):  # fmt: skip
        with pytest.raises(DateError, match=f"^{field}: ") as e:
            date_range(*args)
        assert e.value.field == field and isinstance(e.value, ValueError)


def test_the_filter_keeps_reports_of_those_dates_and_the_undated_ones_marked(tiny_index):
    assert docs(answer(tiny_index, Q, top_k=5)) == {"a", "b", "c"}
    within = answer(tiny_index, Q, top_k=5, date_from="2024", date_to="2024-06")
    assert docs(within) == {"a", "b", "c"} and within.notice == UNDATED_NOTICE  # undated b and c are kept, and said so
    after = answer(tiny_index, Q, top_k=5, date_from="2024-02")
    assert docs(after) == {"b", "c"} and after.notice == UNDATED_NOTICE
    only_dated = answer(tiny_index, Q, top_k=5, report="a", date_to="2024-01-01")
    assert docs(only_dated) == {"a"} and only_dated.notice == ""
    assert answer(tiny_index, Q, top_k=5, report="a", date_from="2024-01-02").notice == "no passage matches the chosen city and report"
    with pytest.raises(DateError, match="date_to"):
        answer(tiny_index, Q, date_to="tomorrow")


def test_the_chat_filters_by_date_in_both_languages(tiny_index, tmp_path):
    c = ui.ChatUI(tiny_index, feedback_path=tmp_path / "fb.sqlite3")
    _, history, records = c.respond(Q, [], {}, 5, "", "", "zh", "2024-02", "")
    assert {p["doc_id"] for p in records[1]["passages"]} == {"b", "c"}
    assert records[1]["filters"]["date_from"] == "2024-02" and "date_to" not in records[1]["filters"]
    text = "".join(Tags(history[1]["content"]).text)
    assert "没有日期的报告不受日期筛选限制" in text and "日期不详" in text
    _, history, _ = c.respond(Q, [], {}, 5, "", "", "en", "", "2024-13")
    assert "date_to: '2024-13' is not a date" in "".join(Tags(history[1]["content"]).text)  # said in the chat, not raised
    zh, en = c.set_lang("zh", [], {}), c.set_lang("en", [], {})
    assert [u["label"] for u in zh[-3:-1]] == ["起始日期", "截止日期"] and [u["label"] for u in en[-3:-1]] == ["From (date)", "To (date)"]


def test_the_api_filters_by_date_and_names_a_bad_one(tiny_index):
    with TestClient(create_api(lambda: tiny_index), base_url="http://127.0.0.1", client=("127.0.0.1", 5000)) as api:
        r = api.post(f"{PREFIX}/ask", json={"question": Q, "date_from": "2024-02"})
        assert r.status_code == 200, r.text
        assert {p["doc_id"] for p in r.json()["passages"]} == {"b", "c"} and r.json()["notice"] == UNDATED_NOTICE
        for body, field in (({"date_from": "2024-13"}, "date_from"), ({"date_to": 2024}, "date_to"),
                            ({"date_from": "2025", "date_to": "2024"}, "date_from"), ({"date_to": "2024-01-011"}, "date_to")):  # fmt: skip
            r = api.post(f"{PREFIX}/ask", json={"question": Q} | body)
            assert r.status_code == 422 and r.json()["field"] == field and field in r.json()["detail"], (body, r.text)


def test_the_cli_filters_by_date(runner, encoder, tiny_corpus, tmp_path):
    folder = tmp_path / "idx"
    assert runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(folder)]).exit_code == 0
    result = runner.invoke(cli, ["ask", "--json", "--index", str(folder), "--from", "2024-02", Q])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert {p["doc_id"] for p in got["passages"]} == {"b", "c"} and got["notice"] == UNDATED_NOTICE
    bad = runner.invoke(cli, ["ask", "--index", str(folder), "--to", "June", Q])
    assert bad.exit_code == 1 and "date_to: 'June' is not a date" in bad.stderr
    chat = runner.invoke(cli, ["chat", "--json", "--index", str(folder), "--to", "2023"], input=Q + "\n")
    assert chat.exit_code == 0 and {p["doc_id"] for p in json.loads(chat.stdout)["passages"]} == {"b", "c"}
