"""Hotline resources and escalation messages per locale (`carellm.safety.resources`)."""

from __future__ import annotations

import pytest

from carellm.safety import (
    assess,
    escalation_message,
    resources_for,
)


def test_resources_come_from_the_hotline_file_with_sources():
    for lang, region in [("zh", None), ("en", None), ("en", "CA"), ("en", "DE"), ("zh", "US")]:
        resources = resources_for(lang, region)
        assert resources
        assert all(
            r.source.startswith("https://") and r.reviewed == "2026-11-23" for r in resources
        )
        assert any(r.kind == "emergency" for r in resources)


@pytest.mark.parametrize(
    "text, region, present, absent",
    [
        (
            "我不想活了",
            None,
            ["12356", "010-82951332", "800-810-1117", "400-161-9995", "110", "120"],
            ["988"],
        ),
        ("I want to kill myself", None, ["988", "911"], ["12356"]),
        ("I want to kill myself", "US", ["988", "911"], ["findahelpline"]),
        ("I want to kill myself", "CA", ["988", "911"], ["12356"]),
        ("I want to kill myself", "DE", ["findahelpline.com", "112"], ["988", "12356"]),
        ("我不想活了", "GB", ["findahelpline.com", "112"], ["12356"]),
    ],
)
def test_escalation_message_lists_the_locale_numbers(text, region, present, absent):
    message = escalation_message(assess(text), region=region)
    for number in present:
        assert number in message
    for number in absent:
        assert number not in message


def test_escalation_message_language_and_urgency():
    zh = escalation_message(assess("今晚就跳下去"))
    assert "立即拨打" in zh and "120" in zh
    en = escalation_message(assess("I already took 30 pills"))
    assert en.startswith("Your safety comes first") and "911" in en
    assert escalation_message(assess("this traffic is killing me")) == ""


def test_transcript_escalation_names_the_regions_line():
    from carellm.assessment import assess_transcript, escalation_for

    heard = assess_transcript(assess("", lang="zh"), "我已经决定今晚跳河了")
    assert heard.level == "imminent" and "12356" in escalation_for(heard)
    assert "988" in escalation_for(assess_transcript(assess("", lang="en"), "I want to die"))
