"""Crisis-detection rules used by `carellm.safety`: plain regular expressions, no model.

Every table is organised per language ("en", "zh") and, for the risk rules, per category.
Text is normalised before matching (NFKC, lower case, curly quotes straightened), so the
patterns are written in lower case with ASCII apostrophes. Both languages' rules run on
every text, because code-switching ("我想kms") is common; `lang` only picks resources.

How a text is scored (see `carellm.safety.assess`):
1. ``IDIOMS`` spans are blanked out first ("笑死我了", "this traffic is killing me").
2. Each ``RULES`` pattern that matches yields (category, level).
3. A match preceded in its clause by a ``NEGATION`` cue drops to "low" ("I would never
   kill myself"): the topic is present, the risk is not asserted.
4. A "high" match in a text with a ``PAST`` marker and no ``ONGOING`` marker drops to
   "moderate" (history is a risk factor, not an acute crisis).
5. A match of "moderate" or more in a risk category becomes "imminent" when the text also
   names prepared ``MEANS`` ("I have the pills ready"), or a ``TIMING`` word together
   with an ``INTENT`` word ("I'm going to ... tonight", "今晚就...").
Third-person, news and academic mentions are matched only by the bare-term "low" rules
("suicide prevention", "自杀率"): the topic is there, but nobody in the chat is at risk.
"""

from __future__ import annotations

from carellm.safety import rules_en as _en
from carellm.safety import rules_zh as _zh

# Categories in report order.
CATEGORIES: tuple[str, ...] = (
    "suicide", "self_harm", "harm_to_others", "abuse", "medical_emergency",
)  # fmt: skip

# Categories whose risk is raised to "imminent" by prepared means or timing + intent.
ESCALATING_CATEGORIES: frozenset[str] = frozenset(
    {"suicide", "self_harm", "harm_to_others", "abuse"}
)

# The per-language tables live in `carellm.safety.rules_en` and `carellm.safety.rules_zh`.
_LANGS = {"en": _en, "zh": _zh}

# (level, pattern) per category, per language.
RULES: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {k: m.RULES for k, m in _LANGS.items()}
# Figures of speech blanked out before matching: no crisis meaning.
IDIOMS: dict[str, tuple[str, ...]] = {k: m.IDIOMS for k, m in _LANGS.items()}
# A cue right before a match in the same clause negates it ("never", "不会", "从来没有想过").
NEGATION: dict[str, str] = {k: m.NEGATION for k, m in _LANGS.items()}
# History markers ("years ago", "以前") and markers that the risk is ongoing ("again", "最近").
PAST: dict[str, str] = {k: m.PAST for k, m in _LANGS.items()}
ONGOING: dict[str, str] = {k: m.ONGOING for k, m in _LANGS.items()}
# Prepared means or a location of danger: raise to "imminent" on their own.
MEANS: dict[str, str] = {k: m.MEANS for k, m in _LANGS.items()}
# Timing raises to "imminent" only together with intent ("going to", "就", "打算").
TIMING: dict[str, str] = {k: m.TIMING for k, m in _LANGS.items()}
INTENT: dict[str, str] = {k: m.INTENT for k, m in _LANGS.items()}

# Escalation message parts per language, used by `carellm.safety.escalation_message`.
# Kept beside the rules so a reviewer can read and revise all crisis wording in one file.
ESCALATION_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "imminent": "Your safety comes first right now. If you are in danger or have already hurt "
        "yourself, please call {emergency} now or go to the nearest emergency department.",
        "high": "Thank you for telling me. That took courage, and I'm worried about your safety. "
        "You don't have to face this alone; you can talk to someone right now:",
        "moderate": "It sounds like you are carrying a lot. If it gets heavier, people are there to listen:",
        "low": "If any of this is weighing on you, support is available:",
        "contacts": "You can also talk to someone right now:",
        "close": "If you can, tell someone you trust how you are feeling and stay near them. I'm here with you.",
    },
    "zh": {
        "imminent": "你的安全是现在最重要的。如果你正处于危险中或已经伤害了自己，请立即拨打 {emergency}，"
        "或尽快去最近的医院急诊。",
        "high": "谢谢你愿意告诉我，这需要很大的勇气，我很担心你的安全。你不必一个人扛着，现在就可以联系他们：",
        "moderate": "听起来你承受了很多。如果感觉更沉重了，这些地方有人愿意倾听：",
        "low": "如果这些事让你心里不好受，可以随时寻求支持：",
        "contacts": "你也可以现在就联系他们：",
        "close": "如果可以的话，告诉一个你信任的人你现在的感受，并尽量待在他们身边。我会在这里陪着你。",
    },
}
