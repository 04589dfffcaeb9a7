"""What the demo shows: Markdown/HTML for the emotion panel, crisis banner, model plan
and chat messages, and the trajectory table. Pure functions of library objects (no
Gradio, no model), so they are tested without a browser."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from carellm.safety import level_at_least

DISCLAIMER = (
    "**CareLLM is a research tool, not a therapist.** It can be wrong and cannot help in "
    "an emergency. Nothing you send is stored unless you click **Export**; Reset clears "
    "the conversation. In danger now? Call your local emergency number "
    "(US/Canada **988**, China **12356**, elsewhere [findahelpline.com](https://findahelpline.com))."
)
TINY_WARNING = (
    '<div id="tiny-warning" style="background:#b00020;color:#fff;padding:10px 14px;'
    'border-radius:8px;font-weight:700;font-size:1.05em">⚠️ TINY RANDOM MODEL: replies, '
    "voices and emotion reports are random noise. This instance only checks the plumbing; "
    "load a real model (--model auto) to counsel.</div>"
)
NO_REPORT = "_No turn yet: the emotion report of your latest message appears here._"
TRAJECTORY_COLUMNS = ("turn", "series", "value", "primary")
TRAJECTORY_SERIES = ("valence", "arousal")
TRAJECTORY_DTYPES = {"turn": "float64", "series": "string", "value": "float64", "primary": "string"}
# Resources listed under the banner whatever the user's language, so a person in another
# country than the one guessed from the language still finds a line.
OTHER_REGIONS = (
    "US/Canada: 988 · China: 12356 · Beijing: 010-82951332 / 800-810-1117 · "
    "Hope 24: 400-161-9995 · elsewhere: https://findahelpline.com"
)


def emotion_panel(report, safety=None) -> str:
    """Markdown for the side panel: emoji, bilingual label, valence/arousal, evidence."""
    if report is None:
        return NO_REPORT
    lines = [
        f"## {report.emoji} {report.label_en} · {report.label_zh}",
        f"**{report.primary.score:.0%}** · {report.intensity} intensity · "
        f"{report.ekman} / {report.sentiment}",
        "",
        f"- valence **{report.valence:+.2f}** (unpleasant −1 … +1 pleasant)",
        f"- arousal **{report.arousal:.2f}** (calm 0 … 1 excited)",
        f"- risk: **{report.risk}**"
        + (f" · safety check: **{safety.level}**" if safety is not None else ""),
        f"- confidence {report.confidence:.2f} · source: {report.source}",
    ]
    if report.secondary:
        also = ", ".join(f"{s.label} {s.score:.0%}" for s in report.secondary)
        lines.append(f"- also: {also}")
    lines += ["", "**Evidence**"]
    for evidence in report.evidence:
        quotes = "; ".join(evidence.phrases) or "(no cue words)"
        lines.append(f"- {evidence.modality}: {quotes}")
    return "\n".join(lines)


def report_summary(report, safety) -> str:
    """One line under each reply, readable without expanding it: label, intensity, risk.

    "😢 Sadness · 悲伤 · high intensity · risk none" (plus "· 🆘 safety high" in a crisis).
    """
    alarm = f" · 🆘 safety {safety.level}" if crisis_visible(safety) else ""
    if report is None:
        return f"No emotion report · safety {safety.level}"
    return (
        f"{report.emoji} {report.label_en} · {report.label_zh} · {report.intensity} intensity"
        f" · risk {report.risk}{alarm}"
    )


def report_message(report, safety) -> str:
    """Details of the emotion report, shown when the one-line summary is expanded."""
    if report is None:
        return f"No emotion report for this turn · safety: {safety.level}"
    evidence = "\n".join(f"- {e.modality}: {'; '.join(e.phrases) or '—'}" for e in report.evidence)
    return (
        f"**{report.label_en} / {report.label_zh}** {report.primary.score:.0%} · "
        f"{report.ekman} / {report.sentiment} · valence {report.valence:+.2f} · "
        f"arousal {report.arousal:.2f} · safety {safety.level} · confidence "
        f"{report.confidence:.2f} ({report.source})\n\n{evidence}"
    )


def report_chat_message(report, safety) -> dict:
    """The collapsed chat message under a reply: its title is the one-line summary."""
    return {
        "role": "assistant",
        "content": report_message(report, safety),
        "metadata": {"title": report_summary(report, safety), "status": "done"},
    }


def trajectory_frame(reports) -> pd.DataFrame:
    """Long-format rows (turn, series, value, primary) for a two-line LinePlot.

    Gradio's LinePlot builds its chart once, taking the colour domain (the series) from
    the data it first sees, and later only swaps the rows: with no turns yet, two rows
    without values (NaN, not drawn) name both series so their lines appear later.
    Numeric columns keep the value axis numeric.
    """
    rows = []
    for turn, report in enumerate(reports, start=1):
        primary = f"{report.emoji} {report.label_en}"
        rows.append((turn, "valence", float(report.valence), primary))
        rows.append((turn, "arousal", float(report.arousal), primary))
    rows = rows or [(np.nan, series, np.nan, "") for series in TRAJECTORY_SERIES]
    frame = pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
    return frame.astype(TRAJECTORY_DTYPES)


def trajectory_caption(reports) -> str:
    """The primary emotion of each turn, in order: "1 😢 sadness → 2 😐 neutral"."""
    if not reports:
        return ""
    return "Primary emotion per turn: " + " → ".join(
        f"{i} {r.emoji} {r.label_en}" for i, r in enumerate(reports, start=1)
    )


def crisis_visible(safety) -> bool:
    return safety is not None and level_at_least(safety.level, "high")


def crisis_banner(safety) -> str:
    """HTML banner with the assessment's hotlines (empty below "high")."""
    if not crisis_visible(safety):
        return ""
    items = "".join(
        f"<li><b>{html.escape(r.name)}</b>: {html.escape(r.contact)}"
        + (f" <small>({html.escape(r.notes)})</small>" if r.notes else "")
        + "</li>"
        for r in safety.resources
    )
    heading = (
        "如果你现在有危险，请立即拨打下面的电话。你不是一个人。"
        if safety.lang == "zh"
        else "If you might act on these thoughts, please reach out now. You are not alone."
    )
    return (
        '<div id="crisis-box" role="alert" style="border:3px solid #b00020;background:#fff0f0;'
        'color:#300;padding:12px 16px;border-radius:8px">'
        f"<h3 style='margin:0 0 6px'>🆘 {html.escape(heading)}</h3><ul>{items}</ul>"
        f"<p style='margin:4px 0 0'>{html.escape(OTHER_REGIONS)}</p></div>"
    )


def plan_panel(info, plan: dict | None = None) -> str:
    """Markdown: the loaded model and, with a selection Plan's to_dict(), its estimate."""
    lines = [
        f"- model: `{info.model}`" + (" (**tiny random**)" if info.tiny else ""),
        f"- device: {info.device} · dtype: {info.dtype} · speech: {'on' if info.speech else 'off'}",
    ]
    if info.reason:
        lines.append(f"- why: {info.reason}")
    if plan:
        lines.append(
            f"- memory estimate: {plan['estimated_peak_gb']:.1f} GiB peak + "
            f"{plan['margin_gb']:.1f} GiB margin of {plan['budget_gb']:.1f} GiB "
            f"({'fits' if plan['fits'] else 'does NOT fit'})"
        )
        lines += [f"- why: {reason}" for reason in plan.get("reasons", [])]
        lines += [f"- ⚠️ {warning}" for warning in plan.get("warnings", [])]
    return "\n".join(lines)


def user_message(text: str, attachments: list[str], transcript: str | None = None) -> str:
    """The user's chat bubble: their text, a note of what was attached and, once the
    voice was transcribed, "🎤 <transcript>" under that note."""
    note = " ".join(f"📎 {a}" for a in attachments)
    heard = f"🎤 {transcript.strip()}" if transcript and transcript.strip() else ""
    return "\n\n".join(part for part in (text.strip(), note, heard) if part) or "(empty)"


def error_line(error: Exception) -> str:
    return f"⚠️ **Not sent:** {html.escape(str(error))}"
