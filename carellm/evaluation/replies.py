"""`carellm eval replies`: generate replies to held-out dialogues and compare them.

For each record the history is every exchange before the last assistant message, the
user text just before that message is the turn, and the last assistant message is the
reference. Replies come from a CareLLM session (speech off, fixed seed), so the
persona prompt, emotion report and safety escalation all run as in the app.

Safety: gold is `carellm.safety.assess` on the user text at "high" or above; a reply
"triggered" when ``reply.escalated``; "missed" = gold without escalation; "spurious" =
escalation without gold (the model's own risk report can raise the level).
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from pathlib import Path

from carellm import generation
from carellm.evaluation import common as evaluation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepliesEvalOptions:
    model: str  # folder, hub id or "tiny" (ignored when an engine is passed)
    data: Path  # CareLLM records JSONL with assistant turns
    out: Path | None = None  # items.jsonl, metrics.json, report.md, replies.png
    limit: int | None = None  # first N usable dialogues
    persona: str = "counselor"
    max_new_tokens: int = 256  # per reply
    seed: int = 0
    device: str | None = None
    progress: bool = True


def split_dialogue(record) -> tuple[list[tuple[str, str]], str, str] | None:
    """(history pairs, last user text, reference) or None when the record has no
    user → assistant ending. Consecutive messages of one role are joined."""
    from carellm.data.records import text_of

    merged: list[list[str]] = []
    for m in record.messages:
        if m["role"] == "system":
            continue
        text = text_of(m["content"]).strip()
        if merged and merged[-1][0] == m["role"]:
            merged[-1][1] += "\n" + text
        else:
            merged.append([m["role"], text])
    while merged and merged[0][0] != "user":
        merged.pop(0)  # an opening assistant line has no user turn to answer
    if len(merged) < 2 or merged[-1][0] != "assistant":
        return None
    pairs = [(merged[i][1], merged[i + 1][1]) for i in range(0, len(merged) - 2, 2)]
    return pairs, merged[-2][1], merged[-1][1]


def seed_history(session, pairs: list[tuple[str, str]]) -> None:
    """Put earlier (user, assistant) exchanges in a session's history as if spoken."""
    from carellm.turn import Turn

    for user, assistant in pairs:
        session.add_exchange(Turn(text=user), assistant)


def reply_item(engine, record, options: RepliesEvalOptions) -> dict | None:
    """Generate one reply; the per-item row (None when the record is unusable)."""
    from carellm import safety
    from carellm.turn import Turn

    parts = split_dialogue(record)
    if parts is None:
        return None
    pairs, user, reference = parts
    session = engine.session(
        persona=options.persona, speech=False, seed=options.seed,
        max_new_tokens=options.max_new_tokens,
    )  # fmt: skip
    seed_history(session, pairs)
    reply = session.respond(Turn(text=user))
    gold = safety.level_at_least(safety.assess(user).level, "high")
    return {
        "id": record.id, "user": user, "reference": reference, "reply": reply.model_text,
        "escalated": reply.escalated, "gold_escalation": gold,
        "seconds": reply.timings.get("total", 0.0), "history_turns": len(pairs),
    }  # fmt: skip


def run_replies(options: RepliesEvalOptions, engine=None) -> dict:
    """Generate every reply (resuming from ``out/items.jsonl``); return the metrics."""
    from tqdm.auto import tqdm

    from carellm.data import read_records

    generation.seed_everything(options.seed)
    records = [r for r in read_records(options.data) if split_dialogue(r) is not None]
    records = records[: options.limit] if options.limit else records
    if engine is None:
        import carellm

        engine = carellm.load(options.model, speech=False, device=options.device)
    log = evaluation.ResultLog(options.out)
    for record in tqdm(records, desc="replies", disable=not options.progress):
        if not log.done(record.id):
            log.add(reply_item(engine, record, options))
    rows = [log.rows[r.id] for r in records]
    metrics = reply_metrics(rows)
    if options.out is not None and rows:
        write_report(Path(options.out), metrics, rows, options)
    return metrics


def reply_metrics(rows: list[dict]) -> dict:
    """distinct-1/2, BLEU, chrF, lengths, safety counts and time per turn."""
    if not rows:
        return {"n": 0}
    replies = [r["reply"] for r in rows]
    refs = [r["reference"] for r in rows]
    return {
        "n": len(rows),
        "distinct_1": evaluation.distinct_n(replies, 1),
        "distinct_2": evaluation.distinct_n(replies, 2),
        **evaluation.bleu_chrf(replies, refs),
        "avg_reply_tokens": statistics.fmean(len(evaluation.tokens(t)) for t in replies),
        "avg_reference_tokens": statistics.fmean(len(evaluation.tokens(t)) for t in refs),
        "escalation_gold": sum(r["gold_escalation"] for r in rows),
        "escalation_triggered": sum(r["escalated"] for r in rows),
        "escalation_missed": sum(r["gold_escalation"] and not r["escalated"] for r in rows),
        "escalation_spurious": sum(r["escalated"] and not r["gold_escalation"] for r in rows),
        "seconds_per_turn": statistics.fmean(r["seconds"] for r in rows),
    }


def format_replies(metrics: dict) -> str:
    if not metrics.get("n"):
        return "no dialogues evaluated"
    keys = ["n", "distinct_1", "distinct_2", "bleu", "chrf", "avg_reply_tokens",
            "avg_reference_tokens", "escalation_gold", "escalation_triggered",
            "escalation_missed", "escalation_spurious", "seconds_per_turn"]  # fmt: skip
    return evaluation.format_table([[k, metrics[k]] for k in keys], ["metric", "value"])


def write_report(out: Path, metrics: dict, rows: list[dict], options) -> None:
    """metrics.json, report.md (table + a few examples) and replies.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluation.write_json(out / "metrics.json", metrics)
    examples = "\n\n".join(
        f"**{r['id']}**  \nuser: {r['user']}  \nreference: {r['reference']}  \nreply: {r['reply']}"
        for r in rows[:5]
    )
    (out / "report.md").write_text(
        f"# Reply evaluation\n\nModel `{options.model}`, data `{options.data}`, "
        f"seed {options.seed}.\n\n```\n{format_replies(metrics)}\n```\n\n"
        f"BLEU tokenizer: {metrics['bleu_tokenize']}. distinct-n is corpus level × 100.\n\n"
        f"## Examples\n\n{examples}\n",
        encoding="utf-8",
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.hist([len(evaluation.tokens(r["reply"])) for r in rows], alpha=0.6, label="reply")
    left.hist([len(evaluation.tokens(r["reference"])) for r in rows], alpha=0.6, label="ref")
    left.set_xlabel("tokens")
    left.legend()
    right.plot([r["seconds"] for r in rows], marker="o")
    right.set_xlabel("item")
    right.set_ylabel("seconds per turn")
    fig.tight_layout()
    fig.savefig(out / "replies.png", dpi=100)
    plt.close(fig)
