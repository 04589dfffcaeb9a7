"""Vocabulary of the emotion report: label info, the questions the model answers, cue lexicon.

Data plus small pure functions: `questions_for` (which questions a turn needs),
`find_cues` (bilingual English + Chinese emotion cue words in a text, with simple
negation handling), `keyword_estimate` (a label distribution from those cues) and
`text_phrases` (text evidence). `carellm.emotion` builds the report from these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from carellm.emotion.taxonomy import GOEMOTIONS_LABELS
from carellm.errors import InputError
from carellm.safety.assess import LEVELS


@dataclass(frozen=True)
class LabelInfo:
    en: str  # English display name
    zh: str  # Chinese (simplified) display name
    emoji: str  # one emoji for the UI
    valence: float  # unpleasant (-1) .. pleasant (+1)
    arousal: float  # calm (0) .. excited (1)


# Valence/arousal are hand-set approximations in the spirit of the NRC VAD lexicon
# (Mohammad 2018), whose 0..1 valence is rescaled to -1..1 (2v - 1); they are not the
# lexicon's exact entries, only plausible values to place labels on the VAD plane.
LABEL_INFO: dict[str, LabelInfo] = {  # keys in GOEMOTIONS_LABELS order (tested)
    "admiration": LabelInfo("Admiration", "钦佩", "🤩", 0.8, 0.5),
    "amusement": LabelInfo("Amusement", "愉悦", "😄", 0.8, 0.7),
    "anger": LabelInfo("Anger", "愤怒", "😠", -0.7, 0.85),
    "annoyance": LabelInfo("Annoyance", "烦躁", "😒", -0.6, 0.65),
    "approval": LabelInfo("Approval", "认同", "👍", 0.6, 0.4),
    "caring": LabelInfo("Caring", "关心", "🤗", 0.7, 0.4),
    "confusion": LabelInfo("Confusion", "困惑", "😕", -0.3, 0.55),
    "curiosity": LabelInfo("Curiosity", "好奇", "🤔", 0.4, 0.6),
    "desire": LabelInfo("Desire", "渴望", "😍", 0.5, 0.7),
    "disappointment": LabelInfo("Disappointment", "失望", "😞", -0.7, 0.4),
    "disapproval": LabelInfo("Disapproval", "不赞同", "👎", -0.6, 0.5),
    "disgust": LabelInfo("Disgust", "厌恶", "🤢", -0.8, 0.6),
    "embarrassment": LabelInfo("Embarrassment", "尴尬", "😳", -0.6, 0.6),
    "excitement": LabelInfo("Excitement", "兴奋", "😆", 0.8, 0.9),
    "fear": LabelInfo("Fear", "恐惧", "😨", -0.8, 0.85),
    "gratitude": LabelInfo("Gratitude", "感激", "🙏", 0.8, 0.4),
    "grief": LabelInfo("Grief", "悲痛", "😭", -0.9, 0.55),
    "joy": LabelInfo("Joy", "喜悦", "😊", 0.9, 0.7),
    "love": LabelInfo("Love", "爱", "❤️", 0.9, 0.6),
    "nervousness": LabelInfo("Nervousness", "紧张", "😬", -0.6, 0.75),
    "optimism": LabelInfo("Optimism", "乐观", "🌤️", 0.8, 0.5),
    "pride": LabelInfo("Pride", "自豪", "🏅", 0.7, 0.6),
    "realization": LabelInfo("Realization", "领悟", "💡", 0.2, 0.45),
    "relief": LabelInfo("Relief", "释然", "😌", 0.6, 0.2),
    "remorse": LabelInfo("Remorse", "懊悔", "😔", -0.7, 0.45),
    "sadness": LabelInfo("Sadness", "悲伤", "😢", -0.8, 0.3),
    "surprise": LabelInfo("Surprise", "惊讶", "😮", 0.2, 0.85),
    "neutral": LabelInfo("Neutral", "中性", "😐", 0.0, 0.2),
}

RISK_LEVELS: tuple[str, ...] = LEVELS  # the safety levels, ascending: one definition
VOICE_DESCRIPTORS: tuple[str, ...] = (
    "calm", "shaky", "tearful", "tense", "flat", "cheerful", "angry", "hesitant",
)  # fmt: skip
VISUAL_DESCRIPTORS: tuple[str, ...] = (
    "smiling", "tearful", "frowning", "tense", "neutral face", "looking down", "agitated",
    "relaxed",
)  # fmt: skip

# Prompt fragments end right before the answer: the engine appends " " + candidate.
EMOTION_QUESTION = "Emotion check. The main emotion the user expresses in their last message is:"
RISK_QUESTION = (
    "Safety check. The risk that the user will harm themselves or someone else, judged "
    "from their last message, is:"
)
# The risk question in the user's language (`carellm.assessment.model_risk` asks it on
# every turn); its candidates, in the same order as RISK_LEVELS.
RISK_QUESTIONS: dict[str, str] = {
    "en": RISK_QUESTION,
    "zh": "安全检查。根据用户的最后一条消息，用户伤害自己或他人的风险是：",
}
RISK_CANDIDATES: dict[str, tuple[str, ...]] = {
    "en": RISK_LEVELS,
    "zh": ("无", "低", "中等", "高", "紧急"),
}
VOICE_QUESTION = "Voice check. In their last message, the user's voice sounds:"
VISUAL_QUESTION = (
    "Visual check. In the user's image or video, the person or scene is best described as:"
)

TURN_MODALITIES: tuple[str, ...] = ("text", "audio", "image", "video")  # a turn's inputs


@dataclass(frozen=True)
class Question:
    name: str  # key in QUESTIONS and in build_report's scores
    prompt: str  # prompt fragment; the engine appends " " + candidate
    candidates: tuple[str, ...]  # answers the engine scores, in a fixed order
    modality: str | None  # evidence modality it informs ("voice"/"visual"); None: every turn


QUESTIONS: dict[str, Question] = {
    "emotion": Question("emotion", EMOTION_QUESTION, GOEMOTIONS_LABELS, None),
    "risk": Question("risk", RISK_QUESTION, RISK_LEVELS, None),
    "voice": Question("voice", VOICE_QUESTION, VOICE_DESCRIPTORS, "voice"),
    "visual": Question("visual", VISUAL_QUESTION, VISUAL_DESCRIPTORS, "visual"),
}


def check_modalities(modalities: Iterable[str]) -> frozenset[str]:
    """The turn's modalities as a set; InputError("modalities") for an unknown name."""
    if isinstance(modalities, str):
        raise InputError("modalities", "expected a set of names such as {'text'}, got a string")
    mods = frozenset(modalities)
    unknown = sorted(str(m) for m in mods - set(TURN_MODALITIES))
    if unknown:
        raise InputError("modalities", f"unknown {unknown}; use {', '.join(TURN_MODALITIES)}")
    return mods


def questions_for(modalities: Iterable[str]) -> tuple[Question, ...]:
    """Questions for a turn: emotion and risk always, voice with audio, visual with image/video."""
    mods = check_modalities(modalities)
    asked = [QUESTIONS["emotion"], QUESTIONS["risk"]]
    if "audio" in mods:
        asked.append(QUESTIONS["voice"])
    if mods & {"image", "video"}:
        asked.append(QUESTIONS["visual"])
    return tuple(asked)


def question_probabilities(scores: object, question: Question) -> dict[str, float]:
    """Softmax of ``scores[question.name]``, candidate -> log-prob (total or per token).

    ValueError saying what is wrong when the question is missing, does not score exactly
    its candidates, or has a non-number, NaN or +inf score (-inf, probability 0, is fine).
    """
    raw = scores.get(question.name) if isinstance(scores, Mapping) else None
    if not isinstance(raw, Mapping):
        raise ValueError(f"no scores for question {question.name!r}")
    if set(raw) != set(question.candidates):
        raise ValueError(f"question {question.name!r} does not score exactly its candidates")
    logps = []
    for candidate in question.candidates:
        value = raw[candidate]
        try:
            logp = float(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{question.name}/{candidate} is not a number") from e
        if isinstance(value, bool) or math.isnan(logp) or logp == math.inf:
            raise ValueError(f"{question.name}/{candidate} is {value!r}")
        logps.append(logp)
    top = max(logps)
    if top == -math.inf:
        raise ValueError(f"every candidate of {question.name!r} has probability 0")
    weights = [math.exp(v - top) for v in logps]
    total = sum(weights)
    return {c: w / total for c, w in zip(question.candidates, weights, strict=True)}


# Cue words per GoEmotions label, English and Chinese mixed (a cue with a CJK character
# is matched as a substring, others as whole words, case-insensitively). Where cues
# overlap, the longest wins, so "不开心" (sadness) beats "开心" (joy).
LEXICON: dict[str, tuple[str, ...]] = {
    "admiration": ("admire", "admired", "amazing", "impressive", "impressed", "awesome",
                   "brilliant", "inspiring", "wonderful", "佩服", "钦佩", "了不起", "厉害",
                   "敬佩", "崇拜"),
    "amusement": ("funny", "hilarious", "lol", "haha", "lmao", "amused", "好笑", "哈哈",
                  "搞笑", "有趣"),
    "anger": ("angry", "furious", "rage", "mad", "pissed", "hate", "livid", "outraged",
              "生气", "愤怒", "气死", "恼怒", "发火", "火大", "恨死"),
    "annoyance": ("annoyed", "annoying", "irritated", "irritating", "frustrated",
                  "frustrating", "fed up", "sick of", "ugh", "好烦", "烦死", "心烦", "烦躁",
                  "烦人", "恼火", "受够了", "无语"),
    "approval": ("agree", "agreed", "exactly", "makes sense", "good idea", "sounds good",
                 "fair enough", "good point", "同意", "赞同", "有道理", "说得对", "没错",
                 "好主意"),
    "caring": ("take care", "look after", "support you", "be there for", "关心", "照顾",
               "心疼", "保重", "体贴"),
    "confusion": ("confused", "confusing", "don't understand", "puzzled", "unsure",
                  "makes no sense", "困惑", "迷茫", "不明白", "搞不懂", "不懂", "糊涂"),
    "curiosity": ("curious", "wonder", "wondering", "intrigued", "interested", "好奇",
                  "想知道", "感兴趣"),
    "desire": ("wish", "long for", "longing", "crave", "craving", "yearn", "if only",
               "渴望", "想要", "好想", "盼望", "多希望"),
    "disappointment": ("disappointed", "disappointing", "let down", "letdown", "失望",
                       "落空", "白费"),
    "disapproval": ("disapprove", "unfair", "unacceptable", "ridiculous", "shouldn't have",
                    "out of line", "不赞成", "不认同", "不公平", "过分", "不应该"),
    "disgust": ("disgusted", "disgusting", "gross", "sickening", "revolting", "repulsed",
                "eww", "恶心", "厌恶", "讨厌", "反感", "作呕"),
    "embarrassment": ("embarrassed", "embarrassing", "ashamed", "humiliated", "awkward",
                      "cringe", "尴尬", "丢脸", "难为情", "羞愧", "丢人", "不好意思"),
    "excitement": ("excited", "exciting", "thrilled", "can't wait", "cannot wait", "pumped",
                   "stoked", "兴奋", "激动", "迫不及待", "太棒了"),
    "fear": ("afraid", "scared", "terrified", "frightened", "fear", "panic", "panicking",
             "horrified", "dread", "害怕", "恐惧", "恐慌", "吓死", "吓到", "可怕", "惊恐",
             "我怕", "好怕", "很怕"),
    "gratitude": ("thank", "thanks", "thank you", "thankful", "grateful", "appreciate",
                  "appreciated", "谢谢", "感谢", "感激", "多谢"),
    "grief": ("grief", "grieving", "mourning", "passed away", "died", "lost my", "funeral",
              "devastated", "heartbroken", "悲痛", "去世", "过世", "离世", "葬礼", "心碎",
              "哀悼"),
    "joy": ("happy", "glad", "joy", "joyful", "delighted", "cheerful", "开心", "高兴", "快乐",
            "幸福", "愉快", "喜悦"),
    "love": ("love", "loved", "loving", "adore", "爱你", "爱他", "爱她", "深爱", "喜欢",
             "相爱"),
    "nervousness": ("nervous", "anxious", "anxiety", "worried", "worry", "worrying",
                    "uneasy", "stressed", "stress", "tense", "on edge", "restless", "紧张",
                    "焦虑", "担心", "不安", "忐忑", "压力", "心慌", "慌张", "不放心"),
    "optimism": ("hopeful", "hope", "optimistic", "looking forward", "希望", "乐观", "会好的",
                 "期待", "有信心"),
    "pride": ("proud", "accomplished", "nailed it", "骄傲", "自豪", "成就感", "得意"),
    "realization": ("realize", "realized", "realise", "realised", "figured out",
                    "dawned on", "turns out", "意识到", "明白了", "原来", "想通了"),
    "relief": ("relieved", "relief", "phew", "thank god", "weight off", "松了口气", "放心",
               "释然", "如释重负", "安心"),
    "remorse": ("sorry", "regret", "regretting", "my fault", "guilty", "guilt", "apologize",
                "apologise", "i shouldn't have", "后悔", "内疚", "愧疚", "对不起", "自责",
                "都怪我"),
    "sadness": ("sad", "unhappy", "depressed", "depressing", "depression", "lonely",
                "alone", "miserable", "cry", "crying", "cried", "tears", "hopeless",
                "upset", "feel down", "feeling down", "feel empty", "难过", "伤心", "悲伤",
                "孤独", "寂寞", "抑郁", "沮丧", "哭", "痛苦", "郁闷", "绝望", "不开心",
                "心情不好", "低落", "失落"),
    "surprise": ("surprised", "surprising", "shocked", "unexpected", "can't believe", "omg",
                 "astonished", "stunned", "惊讶", "吃惊", "震惊", "没想到", "意外", "竟然",
                 "居然"),
    "neutral": (),
}  # fmt: skip

# A negated cue from these labels ("not happy", "不快乐") counts as half a sadness cue;
# other negated cues ("not sad", "别担心", "no thanks") are dropped.
FLIP_TO_SADNESS: frozenset[str] = frozenset({"joy", "optimism", "excitement", "relief", "pride"})
FLIP_WEIGHT = 0.5  # weight of a flipped cue, against 1.0 for a plain one
NEGATORS_EN: tuple[str, ...] = (
    "not", "no", "never", "don't", "dont", "doesn't", "didn't", "isn't", "wasn't", "aren't",
    "ain't", "can't", "cannot", "won't", "hardly", "barely", "without", "nor",
)  # fmt: skip
NEGATORS_ZH = "不没别未无"  # any of these characters shortly before a Chinese cue negates it
NEGATION_WINDOW_EN = 3  # words before an English cue searched for a negator
NEGATION_WINDOW_ZH = 3  # characters before a Chinese cue searched for a negator


@dataclass(frozen=True)
class Cue:
    label: str  # GoEmotions label the cue counts for ("sadness" for a flipped "not happy")
    phrase: str  # the matched words as written, negator included when flipped
    start: int  # character offset of the phrase in the text
    weight: float  # 1.0 for a plain cue, FLIP_WEIGHT for a flipped one


def _is_cjk(s: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in s)


@lru_cache(maxsize=1)
def _cue_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(label, compiled pattern) per cue, compiled on first use rather than at import."""
    patterns = []
    for label, cues in LEXICON.items():
        for cue in cues:
            body = re.escape(cue).replace(r"\ ", r"\s+")
            if not _is_cjk(cue):
                body = rf"(?<![\w']){body}(?![\w'])"
            patterns.append((label, re.compile(body, re.IGNORECASE)))
    return tuple(patterns)


def _negator_start(text: str, start: int, cjk: bool) -> int | None:
    """Offset of a negator shortly before ``text[start:]`` in the same clause, else None."""
    clause_start = max(text.rfind(p, 0, start) for p in ".,;:!?，。；：！？、\n") + 1
    if cjk:
        lo = max(clause_start, start - NEGATION_WINDOW_ZH)
        hits = [i for i in range(lo, start) if text[i] in NEGATORS_ZH]
        return hits[0] if hits else None
    words = list(re.finditer(r"[\w']+", text[clause_start:start]))[-NEGATION_WINDOW_EN:]
    for word in words:
        if word.group().lower() in NEGATORS_EN:
            return clause_start + word.start()
    return None


def find_cues(text: str) -> list[Cue]:
    """Emotion cues in ``text`` in reading order; overlapping matches keep the longest."""
    text = text.replace("\u2019", "'")  # curly apostrophe, same length
    matches = []  # (start, end, label)
    for label, pattern in _cue_patterns():
        matches.extend((m.start(), m.end(), label) for m in pattern.finditer(text))
    matches.sort(key=lambda m: (-(m[1] - m[0]), m[0]))
    taken: list[tuple[int, int, str]] = []
    for start, end, label in matches:
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, label))
    cues = []
    for start, end, label in sorted(taken):
        neg = _negator_start(text, start, _is_cjk(text[start:end]))
        if neg is None:
            cues.append(Cue(label, text[start:end], start, 1.0))
        elif label in FLIP_TO_SADNESS:
            cues.append(Cue("sadness", text[neg:end], neg, FLIP_WEIGHT))
    return cues


FALLBACK_CONFIDENCE_CAP = 0.5  # a keyword estimate is at best a coin flip
FALLBACK_NO_CUE_CONFIDENCE = 0.1  # "neutral" only because nothing matched
MAX_TEXT_PHRASES = 5  # cue phrases quoted as text evidence
OPENING_WORDS = 8  # words quoted as text evidence when no cue matched
OPENING_CHARS = 40  # ... and at most this many characters (Chinese has no spaces)


@dataclass(frozen=True)
class KeywordEstimate:
    probs: dict[str, float]  # GoEmotions label -> share, summing to 1
    primary: str  # heaviest cue label, "neutral" when no cue matched
    confidence: float  # in [0, FALLBACK_CONFIDENCE_CAP)
    cues: tuple[Cue, ...]  # the matches it rests on, in reading order


def keyword_estimate(text: str) -> KeywordEstimate:
    """Label distribution from the cues in ``text``.

    Each cue weighs 1 (0.5 for a flipped "not happy"). Neutral holds a pseudo-share of
    1 / (n + 1) for n cues; the labels share the rest by weight. The primary is the
    heaviest label (first seen on ties). confidence = 0.5 * n / (n + 1) * w_primary / w,
    w the total weight, so few or conflicting cues give less; 0.1 with no cue.
    """
    cues = tuple(find_cues(text))
    weights: dict[str, float] = {}
    for cue in cues:
        weights[cue.label] = weights.get(cue.label, 0.0) + cue.weight
    if not cues:
        probs = {label: float(label == "neutral") for label in LABEL_INFO}
        return KeywordEstimate(probs, "neutral", FALLBACK_NO_CUE_CONFIDENCE, cues)
    total, n = sum(weights.values()), len(cues)
    probs = {label: n / (n + 1) * weights.get(label, 0.0) / total for label in LABEL_INFO}
    probs["neutral"] = 1 / (n + 1)
    primary = max(weights, key=weights.__getitem__)  # dict order = first seen on ties
    confidence = FALLBACK_CONFIDENCE_CAP * n / (n + 1) * weights[primary] / total
    return KeywordEstimate(probs, primary, confidence, cues)


def text_phrases(text: str, cues: Iterable[Cue]) -> tuple[str, ...]:
    """Text evidence: distinct cue phrases, else the text's opening words quoted."""
    phrases = tuple(dict.fromkeys(cue.phrase for cue in cues))[:MAX_TEXT_PHRASES]
    if phrases or not text.strip():
        return phrases
    words = text.split()
    opening = " ".join(words[:OPENING_WORDS])[:OPENING_CHARS]
    return (f'"{opening}…"' if opening != " ".join(words) else f'"{opening}"',)
