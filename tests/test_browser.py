"""The demo in headless Chromium (Playwright) on the tiny random model.

One app and one browser serve the whole module; each test opens its own browser context
(a fresh tab, so a fresh conversation); the tab-close test runs last, on its own app.
Screenshots land in artifacts/screenshots/ (CARELLM_SCREENSHOTS=assets/screenshots
refreshes the ones README.md and doc/demo.md show). Only the first test asks for a
spoken reply: the tiny talker is slow on a CPU, so the others untick "Speech reply".
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from carellm.demo.examples import EXAMPLES, assets_dir

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
# Test artifacts go to artifacts/screenshots (git-ignored); set
# CARELLM_SCREENSHOTS=assets/screenshots to refresh the pictures the docs show.
SHOTS = Path(
    os.environ.get("CARELLM_SCREENSHOTS")
    or Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
)
VIEWPORT = {"width": 1400, "height": 1000}  # px, a laptop screen
REPLY_TIMEOUT = 60_000  # ms for a text-only reply of the tiny model on a busy CPU
SPEECH_TIMEOUT = 240_000  # ms for the first spoken reply (tiny talker on CPU)
# JS: how many replies carry their one-line emotion summary (the report's title)
REPORTS_JS = "() => document.querySelectorAll('#chat .thought-group .title').length"

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(engine, max_new_tokens: int, seed: int = 0):
    """Launch the demo on a free loopback port; returns (demo, url)."""
    from carellm.demo import build_app, launch

    demo = build_app(engine, session_kwargs={"max_new_tokens": max_new_tokens, "seed": seed})
    port = _free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def url(engine):
    demo, address = serve(engine, max_new_tokens=6)
    yield address
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_tab(browser, url):
    """A new browser context (its own Gradio session) with the demo loaded."""
    tab = browser.new_context(viewport=VIEWPORT).new_page()
    tab.goto(url)
    tab.wait_for_selector("#message textarea")
    return tab


@pytest.fixture
def page(browser, url):
    tab = open_tab(browser, url)
    yield tab
    tab.context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def mute(page) -> None:
    page.locator("#speech-reply input[type=checkbox]").uncheck()


def reports(page) -> int:
    return page.evaluate(REPORTS_JS)


# JS: the chat's progress indicator is hidden (the event ended; Gradio ignores another
# submit while one is still running)
IDLE_JS = (
    "() => document.querySelector('#chat [data-testid=status-tracker]').classList.contains('hide')"
)


def wait_for_report(page, before: int, timeout: int = REPLY_TIMEOUT) -> None:
    """Wait until a reply finished: one more one-line emotion summary than ``before``,
    and the turn's event has ended."""
    page.wait_for_function(f"n => ({REPORTS_JS})() > n", arg=before, timeout=timeout)
    page.wait_for_function(IDLE_JS, timeout=timeout)


def send_text(page, text: str, timeout: int = REPLY_TIMEOUT) -> None:
    """Type ``text``, press Enter and wait for the finished reply."""
    before = reports(page)
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")
    wait_for_report(page, before, timeout)


def attach(page, path) -> None:
    """Attach ``path`` in the message box (as its 📎 button does) and wait for the upload."""
    before = page.locator("#message .thumbnail-item").count()
    page.set_input_files("#message input[type=file]", str(path))
    page.wait_for_function(
        "n => document.querySelectorAll('#message .thumbnail-item').length > n",
        arg=before, timeout=REPLY_TIMEOUT,
    )  # fmt: skip


def chat_text(page) -> str:
    return page.locator("#chat").inner_text()


@pytest.mark.timeout(300)
def test_text_message_gets_reply_summary_and_spoken_audio(page):
    # the message box, with its microphone, is on screen without scrolling
    box = page.locator("#message").bounding_box()
    assert box["y"] + box["height"] <= VIEWPORT["height"]
    assert page.locator("#message [aria-label='Record audio']").is_visible()
    assert page.locator("#download").is_hidden()  # no empty export box before an export
    send_text(page, "I had a long day and feel tired.", timeout=SPEECH_TIMEOUT)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#speech-out audio')]"
        ".some(a => (a.currentSrc || a.src || '').length > 0)",
        timeout=SPEECH_TIMEOUT,
    )
    # the one-line summary is readable without expanding anything
    summary = page.locator("#chat .thought-group .title").first.inner_text()
    assert " intensity · risk " in summary and "\n" not in summary.strip()
    body = page.inner_text("body")
    assert "I had a long day" in body and "TINY RANDOM MODEL" in body
    assert "not a therapist" in body
    assert page.locator("#crisis-banner").is_hidden()
    shot(page, "reply.png")


@pytest.mark.timeout(180)
def test_export_appears_below_after_a_turn(page):
    mute(page)
    send_text(page, "Please keep this.")
    page.locator("#export").click()
    page.locator("#download a").first.wait_for(timeout=REPLY_TIMEOUT)
    assert "carellm-session" in page.locator("#download").inner_text()
    assert page.locator("#download a").first.get_attribute("href").endswith(".zip")


@pytest.mark.timeout(180)
def test_voice_attachment_updates_emotion_panel(page, media_dir):
    mute(page)
    attach(page, media_dir / "voice.wav")
    before = reports(page)
    page.locator("#message textarea").press("Enter")
    wait_for_report(page, before)
    page.wait_for_function(
        "() => document.querySelector('#emotion-panel').innerText.includes('voice:')",
        timeout=REPLY_TIMEOUT,
    )
    assert "voice.wav" in chat_text(page)


@pytest.mark.timeout(180)
def test_corrupt_upload_shows_error_then_chat_goes_on(page, tmp_path):
    mute(page)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 8)
    attach(page, bad)
    page.locator("#message textarea").fill("Can you hear this?")
    page.locator("#message textarea").press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#status').innerText.includes('Not sent')",
        timeout=REPLY_TIMEOUT,
    )
    status = page.locator("#status").inner_text()
    assert "audio" in status and reports(page) == 0
    # the text stays in the box, the broken file is gone
    page.wait_for_function(
        "() => document.querySelectorAll('#message .thumbnail-item').length === 0",
        timeout=REPLY_TIMEOUT,
    )
    assert page.locator("#message textarea").input_value() == "Can you hear this?"
    shot(page, "bad_upload.png")
    send_text(page, "Sorry, here it is in words: I am stressed.")
    assert "I am stressed" in chat_text(page) and page.locator("#status").inner_text() == ""


@pytest.mark.timeout(240)
def test_two_browser_sessions_keep_separate_histories(browser, url):
    tabs = []
    for name in ("Alice", "Bob"):
        tab = open_tab(browser, url)
        mute(tab)
        tabs.append(tab)
        send_text(tab, f"My name is {name} and I worry about work.")
    alice, bob = (chat_text(t) for t in tabs)
    assert "Alice" in alice and "Bob" not in alice
    assert "Bob" in bob and "Alice" not in bob
    for tab in tabs:
        tab.context.close()


def click_example(page, label: str) -> None:
    """Click a one-click example and wait for its finished reply."""
    before = reports(page)
    page.locator("#examples").get_by_text(label, exact=True).click()
    wait_for_report(page, before)


@pytest.mark.timeout(180)
def test_trajectory_plot_draws_two_lines_after_two_turns(page):
    mute(page)
    click_example(page, EXAMPLES[1].label)  # stressed voice, English
    click_example(page, EXAMPLES[0].label)  # calm voice, English
    # Vega draws each series as an SVG path with at least one segment ("L")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#trajectory .mark-line path')]"
        ".filter(p => (p.getAttribute('d') || '').includes('L')).length >= 2",
        timeout=REPLY_TIMEOUT,
    )
    legend = page.locator("#trajectory .role-legend").text_content()
    assert "valence" in legend and "arousal" in legend
    assert "1 " in page.locator("#trajectory-caption").inner_text()
    assert "2 " in page.locator("#trajectory-caption").inner_text()
    shot(page, "voice_turns.png")


@pytest.mark.timeout(180)
def test_chinese_message_renders_in_the_bubble(page):
    mute(page)
    text = "我最近压力很大，晚上睡不好。"
    send_text(page, text)
    bubble = page.locator("#chat [data-testid='user']").first.inner_text()
    assert text in bubble
    shot(page, "chinese.png")


@pytest.mark.timeout(180)
def test_crisis_text_shows_hotline_banner(page):
    mute(page)
    send_text(page, "I want to kill myself tonight")
    banner = page.locator("#crisis-banner")
    banner.wait_for(state="visible", timeout=REPLY_TIMEOUT)
    assert "988" in banner.inner_text()
    assert "🆘 safety" in page.locator("#chat .thought-group .title").first.inner_text()
    shot(page, "crisis_banner.png")


EVIDENCE = {".wav": "voice:", ".flac": "voice:", ".mp3": "voice:", ".ogg": "voice:",
            ".jpg": "visual:", ".mp4": "visual:"}  # fmt: skip
SHOT_OF = {"photo_tired.jpg": "example_photo.png", "voice_stressed_zh.ogg": "example_voice_zh.png"}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.file for e in EXAMPLES])
def test_each_example_runs_a_turn_in_one_click(page, example):
    assert (assets_dir() / example.file).is_file()
    mute(page)
    click_example(page, example.label)
    assert example.file in chat_text(page)
    evidence = EVIDENCE[Path(example.file).suffix]
    page.wait_for_function(
        f"() => document.querySelector('#emotion-panel').innerText.includes('{evidence}')",
        timeout=REPLY_TIMEOUT,
    )
    if example.file in SHOT_OF:
        shot(page, SHOT_OF[example.file])


# Last: on a branch where a closed tab blocks the engine, it would hang every later test.
@pytest.mark.timeout(420)
def test_closing_a_tab_mid_reply_leaves_the_app_working(browser, engine):
    """A tab closed while its reply streams must not block the next tab's turn.

    Text only, with a long reply: with seed 12 the tiny model's reply to this message
    runs to the 2000-token cap (about 26 s of decoding on a quiet 2-core machine; seed 0
    stops after about 140 tokens, under a second, which made this test depend on the
    machine's speed), so the closed tab's turn stops at the next token."""
    demo, url = serve(engine, max_new_tokens=2000, seed=12)
    try:
        first = open_tab(browser, url)
        mute(first)
        first.locator("#message textarea").fill("I have been worried all week about my family.")
        first.locator("#message textarea").press("Enter")
        first.wait_for_selector("#chat [data-testid='bot']", timeout=REPLY_TIMEOUT)
        first.wait_for_timeout(1000)
        assert reports(first) == 0, "the reply ended before the tab closed: nothing was tested"
        first.context.close()
        second = open_tab(browser, url)
        mute(second)
        send_text(second, "Hello, is anyone there?", timeout=240_000)
        assert "anyone there" in chat_text(second)
        second.context.close()
    finally:
        demo.close()
