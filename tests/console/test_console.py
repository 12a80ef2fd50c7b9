"""The console in a real browser (headless system Chromium, driven by Playwright) and, for
the checks a browser cannot make, Flask's test client; all against the local stack.

The stack stands in for AWS behind `--stack-name`: the console reads it through boto3 the
way it reads a deployed stack. Each page's screenshot is saved under docs/console/.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from predictflow.cli.aws import Aws
from predictflow.console import Console, serve
from predictflow.console.app import COOKIE, create_app
from predictflow.console.graph import COLOURS
from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import EVENTS, ROOT

ASL = json.loads((ROOT / "statemachine" / "predictflow.asl.json").read_text())


def all_states(definition: dict[str, Any]) -> list[str]:
    """Every state of a definition, a Map's inner states included: what the graph must draw."""
    names: list[str] = []
    for name, state in definition["States"].items():
        names.append(name)
        if "ItemProcessor" in state:
            names.extend(all_states(state["ItemProcessor"]))
    return names


playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system chromium (apt-get install chromium)")

SCREENSHOTS = ROOT / "docs" / "console"
WRITE_SCREENSHOTS = os.environ.get("PREDICTFLOW_SCREENSHOTS") == "1"
"""The README's screenshots are rewritten only when asked for (`PREDICTFLOW_SCREENSHOTS=1`), so
that a test run leaves the working tree as it found it; every page is screenshotted regardless."""
TOKEN = "test-token-0123456789"
WIDTH = 1000


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        with running_stack(retry_wait_scale=0.001) as local:
            yield local


@pytest.fixture(scope="module")
def console(stack: LocalStack) -> Iterator[Console]:
    served = serve(Aws(stack_name=stack.stack_name, region="us-east-1"), port=0, token=TOKEN, background=True)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, console: Console) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": WIDTH, "height": 720})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    tab.goto(console.url)  # the token sets the cookie; every later page goes without it
    yield tab
    context.close()


@pytest.fixture
def client(stack: LocalStack) -> FlaskClient:
    return create_app(Aws(stack_name=stack.stack_name, region="us-east-1"), TOKEN).test_client()


def base(console: Console) -> str:
    return console.url.split("/?", 1)[0]


def screenshot(page: Any, name: str) -> None:
    """A small PNG of the visible page (1000 px wide), for docs/console.md."""
    data = page.screenshot(full_page=False)
    try:
        from PIL import Image

        image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=128)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        data = out.getvalue()
    except ImportError:
        pass
    assert len(data) < 150_000
    if WRITE_SCREENSHOTS:
        (SCREENSHOTS / f"{name}.png").write_bytes(data)


def history_of(stack: LocalStack, arn: str) -> list[dict[str, Any]]:
    return list(
        stack.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    )


# ---------------------------------------------------------------- no browser needed
def test_no_page_without_the_token(client: FlaskClient) -> None:
    for path in ("/", "/executions", "/dead-letters", "/upload", "/static/console.js"):
        assert client.get(path).status_code == 403
    assert client.get("/executions?token=wrong").status_code == 403
    opened = client.get("/executions?token=" + TOKEN)
    assert opened.status_code == 303
    assert "token" not in opened.headers["Location"]
    cookie = opened.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    assert client.get("/executions").status_code == 200


def test_changes_need_the_csrf_token_and_no_cors_headers_are_sent(client: FlaskClient) -> None:
    client.get("/executions?token=" + TOKEN)
    refused = client.post("/dead-letters/replay", data={"entry": "x|1"})
    assert refused.status_code == 403
    assert b"CSRF" in refused.data
    assert client.post("/upload", data={"csrf_token": "guess"}).status_code == 403
    page = client.get("/executions", headers={"Origin": "https://evil.example"})
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.get_data(as_text=True))
    assert csrf is not None
    accepted = client.post("/dead-letters/replay", data={"csrf_token": csrf.group(1)})
    assert accepted.status_code == 303  # nothing selected: back to the list
    assert not [name for name, _ in page.headers if name.lower().startswith("access-control-")]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "testing" not in page.get_data(as_text=True)  # never the credentials


def test_another_host_name_is_refused(console: Console) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(console.url, headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


# ---------------------------------------------------------------- in the browser
def test_an_empty_stack_shows_an_empty_state(page: Any, console: Console) -> None:
    page.goto(base(console) + "/executions")
    assert page.locator("#empty-executions").is_visible()
    page.goto(base(console) + "/dead-letters")
    assert page.locator("#empty-dead-letters").is_visible()


def test_a_page_without_the_token_is_refused_in_the_browser(browser: Any, console: Console) -> None:
    context = browser.new_context()
    response = context.new_page().goto(base(console) + "/executions")
    assert response is not None
    assert response.status == 403
    context.close()


def test_the_journey_upload_inspect_fix_and_replay(page: Any, console: Console, stack: LocalStack) -> None:
    # 1. upload a mixed file by the upload page
    page.goto(base(console) + "/upload")
    page.set_input_files("#file-input", str(EVENTS / "records-mixed.csv"))
    link = page.locator("#upload-results li.upload a")
    link.wait_for()
    name = link.inner_text().rsplit(" ", 1)[-1]
    screenshot(page, "upload")
    # 2. it appears in the list and finishes there, without a reload
    page.goto(base(console) + "/executions")
    page.locator(f'tr[data-execution="{name}"][data-status="SUCCEEDED"]').wait_for()
    row = page.locator(f'tr[data-execution="{name}"]').inner_text()
    assert "incoming/records-mixed.csv" in row
    assert "\t5\t3\t2\t" in row
    screenshot(page, "executions")
    # 3. its graph is coloured by its history
    page.goto(base(console) + f"/executions/{name}")
    arn = stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"
    entered = {
        e["stateEnteredEventDetails"]["name"]
        for e in history_of(stack, arn)
        if "stateEnteredEventDetails" in e
    }
    states = page.locator("svg.graph g.state")
    assert states.count() == len(all_states(ASL))
    for index in range(states.count()):
        state = states.nth(index)
        fill = state.locator("rect").last.get_attribute("fill")
        expected = (
            COLOURS["succeeded"] if state.get_attribute("data-state") in entered else COLOURS["not-reached"]
        )
        assert fill == expected, state.get_attribute("data-state")
    # 4. the Validate state's input and output
    page.locator('g.state[data-state="Validate"]').click()
    page.locator("#state-input").wait_for()
    assert '"chunk"' in page.locator("#state-input").inner_text()
    output = page.locator("#state-output")
    assert "collapsed" in output.inner_text()  # a large payload waits to be opened
    output.locator("summary").click()
    assert '"validated"' in output.locator("pre").inner_text()
    assert (
        page.locator("#aws-console-link")
        .get_attribute("href", timeout=1000)
        .startswith(  # type: ignore[union-attr]
            "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn:"
        )
    )
    screenshot(page, "execution")
    page.goto(
        base(console)
        + "/predictions?"
        + page.locator("#predictions-link").get_attribute("href").split("?")[1]
    )  # type: ignore[union-attr]
    assert page.locator("#preview tbody tr").count() == 3
    screenshot(page, "predictions")
    # 5. fix one dead-lettered line and replay it
    page.goto(base(console) + "/dead-letters?source=incoming/records-mixed.csv")
    bad = page.locator('tr.entry[data-line="4"]')
    assert bad.locator("mark").inner_text() == "abc"  # the field the message names
    screenshot(page, "dead-letters")
    bad.locator("button.edit").click()
    editor = page.locator("tr.fix-row textarea")
    editor.fill(editor.input_value().replace("abc", "31", 1))
    page.locator("tr.fix-row button.replay-fixed").click()
    notice = page.locator(".flash-ok")
    notice.wait_for()
    replay_name = notice.inner_text().rsplit("execution ", 1)[-1].strip()
    # 6. the replay's execution succeeds and the entry is marked
    stack.wait_for_executions(len(stack.started_executions))
    page.goto(base(console) + "/executions")
    assert page.locator(f'tr[data-execution="{replay_name}"]').get_attribute("data-status") == "SUCCEEDED"
    page.goto(base(console) + "/dead-letters?source=incoming/records-mixed.csv")
    assert page.locator('tr.entry[data-line="4"] .pill-replayed').is_visible()
    assert page.locator('tr.entry[data-line="4"] button.edit').count() == 0
    # replaying it again submits nothing
    again = page.evaluate(
        """async () => {
            const form = new FormData();
            form.append("csrf_token", document.querySelector('meta[name="csrf-token"]').content);
            form.append("source", "incoming/records-mixed.csv");
            form.append("entry", document.querySelector('tr.entry[data-line="4"]').dataset.entry);
            const response = await fetch("/dead-letters/replay", {method: "POST", body: form});
            return await response.text();
        }"""
    )
    assert "replayed already or gone" in again
    assert len(stack.started_executions) == 2


def test_a_replay_post_without_the_csrf_token_is_refused_in_the_browser(page: Any, console: Console) -> None:
    page.goto(base(console) + "/dead-letters")
    status = page.evaluate(
        """async () => (await fetch("/dead-letters/replay", {method: "POST",
            body: new URLSearchParams({entry: "x|1"})})).status"""
    )
    assert status == 403


def test_the_list_updates_itself_and_a_failed_execution_shows_its_error(
    page: Any, console: Console, stack: LocalStack
) -> None:
    page.goto(base(console) + "/executions")
    before = page.locator("#executions tbody tr").count()
    header = (EVENTS / "records-mixed.csv").read_bytes().splitlines(keepends=True)[0]
    stack.upload(Path("header-only.csv"), key="incoming/header-only.csv", body=header)
    page.locator("#executions tbody tr").nth(before).wait_for()  # no reload: the rows refresh
    failed = page.locator('tr[data-status="FAILED"]')
    failed.wait_for()
    failed.locator("a").click()
    assert "NoRecords" in page.locator("#execution-error").inner_text()
    assert page.locator('g.state[data-state="No Records"]').get_attribute("data-status") == "failed"
    assert (
        page.locator('g.state[data-state="No Records"] rect').first.get_attribute("fill") == COLOURS["failed"]
    )
    screenshot(page, "execution-failed")


def test_cookie_name_is_the_consoles(page: Any) -> None:
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies[COOKIE]["httpOnly"]
    assert cookies[COOKIE]["sameSite"] == "Strict"
