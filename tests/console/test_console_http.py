"""The console over HTTP as a browser speaks it: sign-in, roles and CSRF on
every form, actions recorded through the same desk and audit trail as the
API, languages, the heat map against the API's numbers, live changes.

A real `riskwatch run` fills the store with four simulated months; a real
`riskwatch api` serves the console over it. The browser journeys are in
test_console_browser.py."""

from __future__ import annotations

import re
import shutil
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from support.alertmanager import free_port
from support.api import running_api
from support.console import TOKENS, TOKENS_ENV, Browserless, actions, alert_ids, copy_store, text_of

pytestmark = [pytest.mark.api, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def api(url: str, path: str, role: str = "readonly"):
    response = httpx.get(url + path, headers={"Authorization": f"Bearer {TOKENS[role]}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def person(url: str, role: str | None = None, language: str | None = "en", name: str | None = None) -> Browserless:
    who = Browserless(url, language)
    if role:
        assert who.sign_in(role, name).status_code == 303
    return who


def test_the_console_asks_for_a_token_and_keeps_the_session_in_an_httponly_strict_cookie(console):
    anonymous = Browserless(console)
    assert anonymous.get("/").headers["location"] == "/console/"
    to_login = anonymous.get("/console/")
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/console/login")
    login = anonymous.get("/console/login")
    assert 'name="token"' in login.text
    wrong = anonymous.http.post("/console/login", data={"token": "not-a-configured-token"},
                                headers={"Origin": console})
    assert wrong.status_code == 401 and "rw_session" not in wrong.headers.get("set-cookie", "")

    signed_in = anonymous.http.post("/console/login", data={"token": TOKENS["officer"]}, headers={"Origin": console})
    cookie = signed_in.headers["set-cookie"].lower()
    assert signed_in.status_code == 303 and "httponly" in cookie and "samesite=strict" in cookie
    assert TOKENS["officer"].lower() not in cookie  # the browser holds a session id, never the token
    assert anonymous.get("/console/").status_code == 200

    anonymous.post("/console/logout")
    assert anonymous.get("/console/").status_code == 303  # the session is gone on the server


def test_a_read_only_user_sees_no_action_and_a_forged_form_is_refused(console):
    reader = person(console, "readonly")
    inbox = reader.get("/console/")
    alert_id = alert_ids(inbox.text)[0]
    page = reader.get(f"/console/alerts/{alert_id}")
    assert page.status_code == 200 and actions(page.text) == set()
    # Posted by hand with the reader's own valid session and CSRF token: the role decides.
    for path, fields in ((f"/console/alerts/{alert_id}/ack", {}),
                         (f"/console/alerts/{alert_id}/resolve", {"reason": "forged"}),
                         (f"/console/alerts/{alert_id}/steps/1", {"outcome": "done"}),
                         ("/console/rules/reload", {})):
        assert reader.post(path, **fields).status_code == 403, path
    assert api(console, f"/v1/alerts/{alert_id}")["status"] == "open"
    assert [a for a in api(console, f"/v1/actions?subject={alert_id}") if a["role"] != "system"] == []


def test_a_form_without_this_sessions_csrf_token_or_from_another_site_is_refused(console):
    officer = person(console, "officer")
    alert_id = alert_ids(officer.get("/console/").text)[0]
    assert officer.post(f"/console/alerts/{alert_id}/ack", csrf="").status_code == 403
    assert officer.post(f"/console/alerts/{alert_id}/ack", csrf="guessed-token").status_code == 403
    assert officer.post(f"/console/alerts/{alert_id}/ack", origin="https://evil.example").status_code == 403
    other = person(console, "officer")  # another session's token does not fit this one
    assert officer.post(f"/console/alerts/{alert_id}/ack", csrf=other.csrf).status_code == 403
    assert api(console, f"/v1/alerts/{alert_id}")["status"] == "open"
    assert officer.post(f"/console/alerts/{alert_id}/ack").status_code == 303
    assert api(console, f"/v1/alerts/{alert_id}")["status"] == "acknowledged"


def test_an_officers_clicks_are_the_apis_actions_with_who_and_why(console):
    officer = person(console, "officer", name="Ann Lee")
    inbox = officer.get("/console/")
    alert_id = alert_ids(inbox.text)[0]
    page = officer.get(f"/console/alerts/{alert_id}")
    assert {"ack", "start", "snooze", "resolve", "step-done", "step-skip", "comment"} <= actions(page.text)
    assert "trigger-plan" not in actions(page.text)  # a director's action

    assert officer.post(f"/console/alerts/{alert_id}/ack").status_code == 303
    assert officer.post(f"/console/alerts/{alert_id}/steps/1", outcome="done", note="called the customer").status_code == 303
    assert officer.post(f"/console/alerts/{alert_id}/steps/2", outcome="skipped").status_code == 422  # a skip needs a why
    assert officer.post(f"/console/alerts/{alert_id}/comment", reason="customer promised payment on Friday").status_code == 303

    shown = api(console, f"/v1/alerts/{alert_id}")
    assert shown["acknowledged_by"].startswith("Ann Lee")
    assert shown["steps"][0]["status"] == "done" and shown["steps"][0]["note"] == "called the customer"
    trail = [(a["kind"], a["actor"].split(" (")[0], a["reason"]) for a in shown["audit"] if a["role"] == "officer"]
    assert trail == [("acknowledge", "Ann Lee", None), ("step_done", "Ann Lee", "called the customer"),
                     ("comment", "Ann Lee", "customer promised payment on Friday")]
    again = officer.get(f"/console/alerts/{alert_id}")
    assert "customer promised payment on Friday" in text_of(again.text)
    assert "ack" not in actions(again.text)  # acknowledged: the button is gone


def test_the_inbox_puts_the_most_urgent_first_and_filters_as_asked(console):
    officer = person(console, "officer")
    rows = api(console, "/v1/alerts?limit=1000")
    needing = [a for a in rows if a["status"] in ("open", "acknowledged", "in_progress")]
    rank = {"red": 0, "orange": 1, "yellow": 2, "blue": 3}
    expected = sorted(needing, key=lambda a: (rank[a["tier"]], a["alert"]["respond_by"], a["alert"]["raised_at"],
                                              a["alert_id"]))
    shown = alert_ids(officer.get("/console/").text)
    assert shown == [a["alert_id"] for a in expected][:50]
    assert f"{len(needing)} alerts need a person" in text_of(officer.get("/console/").text)

    blue_south = [a["alert_id"] for a in expected if a["tier"] == "blue" and a["region"] == "south"]
    assert alert_ids(officer.get("/console/?tier=blue&region=south").text) == blue_south[:50]


def test_chinese_pages_show_chinese_labels_and_yuan_amounts_and_the_switch_sticks(console):
    reader = person(console, "readonly", language="zh-CN,zh;q=0.9,en;q=0.5")
    inbox = reader.get("/console/")
    assert '<html lang="zh-CN">' in inbox.text
    text = text_of(inbox.text)
    assert "待办" in text and "需要处理" in text and "响应时限" in text
    assert re.search(r"¥\d{1,3}(,\d{3})*\.\d\d", text), "amounts at stake in ¥ with grouping"
    # Chinese punctuation between a label and its value, as in the rest of the page.
    assert "服务时钟：" in text and "服务时钟: " not in text and "（Asia/Shanghai）" in text
    rules = text_of(reader.get("/console/rules").text)
    assert re.search(r"\w：\S", rules) and not re.search(r"[a-z_]+: \S", rules), "rule parameters as name：value"
    switched = reader.get("/console/language/en?back=/console/heatmap")
    assert switched.status_code == 303 and switched.headers["location"] == "/console/heatmap"
    english = reader.get("/console/heatmap")
    assert '<html lang="en">' in english.text and "Heat map" in english.text  # despite Accept-Language zh
    assert reader.get("/console/language/en?back=https://evil.example/").headers["location"] == "/console/"


def test_the_heat_map_counts_what_the_api_lists(console):
    reader = person(console, "readonly")
    page = reader.get("/console/heatmap").text
    shown = {cell: int(count) for cell, count in re.findall(r'data-cell="(\d-\d)" data-count="(\d+)"', page)}
    listed = api(console, "/v1/alerts?limit=1000")
    expected = Counter(f"{min(int(a['alert']['probability'] * 10), 9)}-{min(int(a['alert']['impact'] * 10), 9)}"
                       for a in listed if a["status"] != "resolved")
    assert shown == dict(expected) and sum(shown.values()) > 20
    cell, count = max(shown.items(), key=lambda pair: pair[1])
    drilled = reader.get(f"/console/?cell={cell}&status=").text
    assert len(alert_ids(drilled)) == min(count, 50) or count > 50


def test_a_director_triggers_the_price_war_plan_and_sees_the_fund_against_its_budget(console):
    price_cut = next(a for a in api(console, "/v1/alerts?limit=1000&indicator=competitor_price_cut")
                     if a["status"] != "resolved")
    director = person(console, "director", name="Wang Fang")
    page = director.get(f"/console/alerts/{price_cut['alert_id']}")
    assert "trigger-plan" in actions(page.text)
    trigger = director.post("/console/plans", alert_id=price_cut["alert_id"], plan="price_war_response",
                            reason="protect key accounts in the east", committed_amount="400,000",
                            annual_sales_budget="100000000", currency="CNY")
    assert trigger.status_code == 303, trigger.text
    plans = director.get("/console/plans")
    text = text_of(plans.text)
    assert "committed ¥400,000.00 of ¥5,000,000.00" in text and "left ¥4,600,000.00" in text
    listed = api(console, f"/v1/plans?alert_id={price_cut['alert_id']}")
    assert [(p["plan"], p["fund"]["committed_amount"], p["triggered_by"].split(" (")[0]) for p in listed] == [
        ("price_war_response", 400000.0, "Wang Fang")]
    # The same plan again on the same alert: refused, and the page says why.
    again = director.post("/console/plans", alert_id=price_cut["alert_id"], plan="price_war_response",
                          reason="again", committed_amount="1000", annual_sales_budget="100000000")
    assert again.status_code == 409 and "This plan is already active on the alert" in text_of(again.text)
    over = director.http.post("/console/plans", data={
        "csrf": director.csrf, "alert_id": price_cut["alert_id"], "plan": "price_war_response", "another": "1",
        "reason": "more", "committed_amount": "4700000", "annual_sales_budget": "100000000"},
        headers={"Origin": console, "Referer": f"{console}/console/alerts/{price_cut['alert_id']}"})
    shown = text_of(over.text)
    assert over.status_code == 409 and "The fund has ¥4,600,000.00 left of its ¥5,000,000.00 budget" in shown
    assert "You asked to commit ¥4,700,000.00." in shown and "budget_override" not in shown
    assert f'href="/console/alerts/{price_cut["alert_id"]}"' in over.text  # back to the alert the form was on
    officer = person(console, "officer")
    assert officer.post("/console/plans", alert_id=price_cut["alert_id"], plan="price_war_response",
                        reason="not mine to do", committed_amount="1").status_code == 403


def test_the_operator_reloads_rules_and_sees_why_broken_files_are_refused(store_template, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    store = copy_store(store_template, tmp_path / "store")
    with running_api(free_port(), RISKWATCH_API_TOKENS=TOKENS_ENV, RISKWATCH_STORE_DIR=str(store),
                     RISKWATCH_RULES=str(rules), RISKWATCH_LOG_LEVEL="WARNING") as console:
        operator = person(console, "operator")
        page = operator.get("/console/rules")
        assert "rules-reload" in actions(page.text) and "Order delivery delay" in text_of(page.text)
        # Step deadlines in words, in the unit the playbook file writes them ("due: 72h").
        assert "72 hours" in text_of(page.text) and "7 days" in text_of(page.text)
        chinese = text_of(person(console, "operator", language="zh-CN").get("/console/rules").text)
        assert "72小时" in chinese and "7天" in chinese and " 72h" not in chinese
        reloaded = operator.post("/console/rules/reload")
        assert reloaded.status_code == 200 and "reloaded and are in force" in text_of(reloaded.text)
        assert any(a["kind"] == "rules_reloaded" for a in api(console, "/v1/actions?subject=rules"))
        assert "rules-reload" not in actions(person(console, "officer").get("/console/rules").text)

        escalation = rules / "escalation.yaml"
        escalation.write_text(escalation.read_text().replace("  red: 1h", "  red: soon", 1))
        refused = operator.post("/console/rules/reload")
        shown = text_of(refused.text)
        assert refused.status_code == 409 and "refused; the running rules stay" in shown
        assert "escalation.yaml" in shown and "escalate_every.red" in shown
        # The running rules stay: the API still answers with them.
        assert api(console, "/v1/plans") is not None
        assert [a["kind"] for a in api(console, "/v1/actions?subject=rules")].count("rules_reloaded") == 1


def test_a_change_recorded_elsewhere_reaches_an_open_console_live(console):
    officer = person(console, "officer")
    alert_id = alert_ids(officer.get("/console/").text)[0]
    received: list[str] = []
    ready = threading.Event()

    def listen():
        with officer.http.stream("GET", "/console/events", timeout=30) as stream:
            for line in stream.iter_lines():
                ready.set()
                received.append(line)
                if line.startswith("event: change"):
                    return
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(10)
    # Another person acknowledges through the API.
    response = httpx.post(f"{console}/v1/alerts/{alert_id}/ack",
                          headers={"Authorization": f"Bearer {TOKENS['director']}"}, json={}, timeout=30)
    assert response.status_code == 200
    listener.join(15)
    assert "event: change" in received
    rows = officer.get("/console/inbox/rows").text
    assert f'data-alert-id="{alert_id}"' in rows and "Acknowledged" in text_of(rows)


def test_a_review_is_found_by_its_incident_submitted_as_five_whys_and_signed_off(console):
    review = next(r for r in api(console, "/v1/reviews") if r["status"] == "open")
    alert = api(console, f"/v1/alerts/{review['alert_id']}")
    officer = person(console, "officer", name="Ann Lee")
    page = officer.get("/console/reviews")
    card = page.text[page.text.index(f'data-review-id="{review["review_id"]}"'):]
    card = card[:card.index("</article>")]
    # The incident by its title and subject, not by an id.
    assert alert["alert"]["title"] in text_of(card) and alert["alert"]["subject"]["id"] in text_of(card)
    if review["overdue"]:
        assert "overdue by" in text_of(card)
    submitted = officer.post(f"/console/reviews/{review['review_id']}", why1="the customer's credit was not reviewed",
                             why2="no owner for credit reviews", root_cause="credit reviews have no owner",
                             corrective_actions="name an owner\ncredit review every quarter")
    assert submitted.status_code == 303
    landed = officer.get(submitted.headers["location"])
    assert f"Review submitted: {alert['alert']['title']}" in text_of(landed.text)
    assert landed.text.index(f'data-review-id="{review["review_id"]}"') < landed.text.index("</article>")  # first
    card = landed.text[landed.text.index(f'data-review-id="{review["review_id"]}"'):]
    card = text_of(card[:card.index("</article>")])
    # What was submitted, labelled, and the form offered as a revision, not as an empty new review.
    assert "Root cause" in card and "Corrective actions" in card and "credit review every quarter" in card
    assert "Revise the review" in card and "Submit the revision" in card and "Submit review" not in card
    assert "signoff" not in actions(officer.get("/console/reviews").text)  # an officer does not sign off
    director = person(console, "director")
    assert "signoff" in actions(director.get("/console/reviews").text)
    signed = director.post(f"/console/reviews/{review['review_id']}/signoff", note="agreed")
    assert signed.status_code == 303
    landed = text_of(director.get(signed.headers["location"]).text)
    assert "Signed off: " in landed and "agreed" in landed and "Ann Lee" in landed
    shown = api(console, f"/v1/reviews/{review['review_id']}")
    assert shown["status"] == "signed_off" and shown["root_cause"] == "credit reviews have no owner"
    assert shown["corrective_actions"] == ["name an owner", "credit review every quarter"]
    assert f'data-review-id="{review["review_id"]}"' not in director.get("/console/reviews").text  # done: off the to-do list
    assert f'data-review-id="{review["review_id"]}"' in director.get("/console/reviews?show=signed_off").text


def test_an_alert_resolved_while_its_page_is_open_reloads_the_page_not_only_its_status(console):
    """The live status line of an alert page asks with the status the page was
    drawn in; when the alert has moved on (resolved meanwhile), the answer
    tells htmx to reload the page, so no button stays for an action the alert
    no longer allows."""
    officer = person(console, "officer", name="Ann Lee")
    for alert_id in alert_ids(officer.get("/console/").text):
        page = officer.get(f"/console/alerts/{alert_id}")
        drawn = re.search(r'/console/alerts/[^"/]+/status\?shown=(\w+)', page.text)
        assert drawn, page.text[:2000]
        if drawn.group(1) == "open":
            break
    else:
        pytest.fail("no open alert in the inbox")
    unchanged = officer.get(f"/console/alerts/{alert_id}/status?shown=open")
    assert unchanged.status_code == 200 and "HX-Refresh" not in unchanged.headers
    assert officer.post(f"/console/alerts/{alert_id}/resolve", reason="paid in full, confirmed by the bank").status_code == 303
    moved_on = officer.get(f"/console/alerts/{alert_id}/status?shown=open")
    assert moved_on.status_code == 200 and moved_on.headers.get("HX-Refresh") == "true"
    assert "ack" not in actions(officer.get(f"/console/alerts/{alert_id}").text)


def test_a_mistyped_console_address_is_a_page_in_the_persons_language_not_json(console):
    reader = person(console, "readonly", language="zh-CN,zh;q=0.9,en;q=0.5")
    missing = reader.get("/console/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in missing.text and "未找到" in text_of(missing.text)
    assert 'href="/console/"' in missing.text  # a way back to the inbox
    # The API keeps its JSON answer for an unknown path.
    assert reader.http.get("/v1/no-such-thing").headers["content-type"].startswith("application/json")
