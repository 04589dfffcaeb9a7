"""The demo in headless Chromium (Playwright) on the tiny random model.

Screenshots land in artifacts/screenshots/ (CARELLM_SCREENSHOTS=doc/screenshots refreshes
the ones doc/demo.md shows). Only the first test asks for a spoken reply: the tiny talker is slow on a CPU, so the others untick "Speech reply".
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
# Test artifacts go to artifacts/screenshots (git-ignored); set CARELLM_SCREENSHOTS=doc/screenshots
# to refresh the pictures doc/demo.md shows.
SHOTS = Path(
    os.environ.get("CARELLM_SCREENSHOTS")
    or Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
)
REPLY_TIMEOUT = 60_000  # ms for a text-only reply of the tiny model on a busy CPU
SPEECH_TIMEOUT = 240_000  # ms for the first spoken reply (tiny talker on CPU)

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(engine):
    from carellm.demo import build_app, launch

    demo = build_app(engine, session_kwargs={"max_new_tokens": 6, "seed": 0})
    port = _free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#message textarea")
    yield page
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def mute(page) -> None:
    page.locator("#speech-reply input[type=checkbox]").uncheck()


def bot_count(page) -> int:
    return page.locator("#chat [data-testid='bot']").count()


REPORTS_JS = "() => document.querySelector('#chat').innerText.split('Emotion report').length - 1"


def send_text(page, text: str) -> None:
    """Type ``text``, press Enter and wait until one more reply (plus report) is shown."""
    before = page.evaluate(REPORTS_JS)
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(f"n => ({REPORTS_JS})() > n", arg=before, timeout=REPLY_TIMEOUT)


def upload(page, component: str, path) -> None:
    """Switch ``component`` (e.g. "#audio-in") to its upload source and upload ``path``."""
    page.locator(f"{component} button[aria-label='Upload file']").click()
    page.set_input_files(f"{component} input[type=file]", str(path))
    page.wait_for_timeout(2000)  # the upload request; the turn would wait for it anyway


def chat_text(page) -> str:
    return page.locator("#chat").inner_text()


def test_text_message_gets_reply_and_spoken_audio(page):
    page.locator("#message textarea").fill("I had a long day and feel tired.")
    page.locator("#message textarea").press("Enter")
    page.wait_for_selector("#chat [data-testid='bot']", timeout=REPLY_TIMEOUT)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#speech-out audio')]"
        ".some(a => (a.currentSrc || a.src || '').length > 0)",
        timeout=SPEECH_TIMEOUT,
    )
    page.wait_for_function(
        "() => document.querySelector('#chat').innerText.includes('Emotion report')",
        timeout=SPEECH_TIMEOUT,
    )
    body = page.inner_text("body")
    assert "I had a long day" in body and "TINY RANDOM MODEL" in body
    assert "not a therapist" in body
    assert page.locator("#crisis-banner").is_hidden()
    shot(page, "reply.png")


def test_voice_upload_updates_emotion_panel(page, media_dir):
    mute(page)
    upload(page, "#audio-in", media_dir / "voice.wav")
    page.locator("#send").click()
    page.wait_for_selector("#chat [data-testid='bot']", timeout=REPLY_TIMEOUT)
    page.wait_for_function(
        "() => document.querySelector('#emotion-panel').innerText.includes('voice:')",
        timeout=REPLY_TIMEOUT,
    )
    page.wait_for_function(f"() => ({REPORTS_JS})() > 0", timeout=REPLY_TIMEOUT)
    assert "voice.wav" in chat_text(page)
    shot(page, "voice_upload.png")


def test_corrupt_upload_shows_error_then_chat_goes_on(page, tmp_path):
    mute(page)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 8)
    upload(page, "#audio-in", bad)
    page.locator("#message textarea").fill("Can you hear this?")
    page.locator("#send").click()
    page.wait_for_function(
        "() => document.querySelector('#status').innerText.includes('Not sent')",
        timeout=REPLY_TIMEOUT,
    )
    status = page.locator("#status").inner_text()
    assert "audio" in status and bot_count(page) == 0
    shot(page, "bad_upload.png")
    send_text(page, "Sorry, here it is in words: I am stressed.")
    assert "I am stressed" in chat_text(page) and page.locator("#status").inner_text() == ""


def test_two_browser_sessions_keep_separate_histories(browser, url):
    pages = []
    for name in ("Alice", "Bob"):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        tab.goto(url)
        tab.wait_for_selector("#message textarea")
        mute(tab)
        pages.append(tab)
        send_text(tab, f"My name is {name} and I worry about work.")
    alice, bob = (chat_text(p) for p in pages)
    assert "Alice" in alice and "Bob" not in alice
    assert "Bob" in bob and "Alice" not in bob
    for tab in pages:
        tab.context.close()


def test_crisis_text_shows_hotline_banner(page):
    mute(page)
    send_text(page, "I want to kill myself tonight")
    banner = page.locator("#crisis-banner")
    banner.wait_for(state="visible", timeout=REPLY_TIMEOUT)
    assert "988" in banner.inner_text()
    shot(page, "crisis_banner.png")
