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

# Categories in report order.
CATEGORIES: tuple[str, ...] = (
    "suicide", "self_harm", "harm_to_others", "abuse", "medical_emergency",
)  # fmt: skip

# Categories whose risk is raised to "imminent" by prepared means or timing + intent.
ESCALATING_CATEGORIES: frozenset[str] = frozenset(
    {"suicide", "self_harm", "harm_to_others", "abuse"}
)

# First-person overdose: counts as a suicide attempt and as a medical emergency.
_EN_SELF_OVERDOSE = (
    r"\bi\s+(?:\w+\s+)?(?:took|swallowed|have taken|'ve taken)\s+(?:a\s+(?:whole\s+)?"
    r"(?:bottle|box|pack|handful)\s+of\s+|all\s+(?:of\s+)?(?:my|the)\s+|(?:way\s+|far\s+)?too\s+many\s+|"
    r"\d{2,}\s+|(?:twenty|thirty|forty|fifty|a hundred)\s+)(?:\w+\s+)?"
    r"(?:pills|tablets|meds|medication|painkillers)"
)
_ZH_SELF_OVERDOSE = (
    r"我(?:刚|刚刚|已经)?(?:把|将)(?:一整瓶|整瓶|一瓶|一盒|整盒|所有的?)(?:安眠)?药.{0,3}(?:吃|吞)|"
    r"我(?:刚|刚刚|已经)?(?:吃|吞|服)了?(?:一整瓶|整瓶|一瓶|一盒|整盒|好多|很多|一大把|一把|"
    r"几十|\d{2,})(?:片|颗|粒)?的?(?:安眠药|药片|药)|我(?:刚|已经)?(?:喝|吃)了?(?:农药|百草枯|敌敌畏|老鼠药)"
)

# (level, pattern) per category, per language.
RULES: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "en": {
        "suicide": (
            # ASCII look-arounds, not \b: CJK characters count as word characters ("我想kms").
            ("high", r"\bkill(?:ing)?\s+my\s*self\b|(?<![a-z])(?:kms|unaliv(?:e|ing))(?![a-z])"),
            ("high", r"\b(?:want|wanna|wanted|ready|deserve)\s+(?:to\s+)?(?:die|be dead)\b"),
            ("high", r"\bend(?:ing)?\s+(?:my\s+(?:own\s+)?life|it\s+all|things\b(?!\s+with))\b"),
            ("high", r"\btak(?:e|ing)\s+my\s+(?:own\s+)?life\b"),
            ("high", r"\b(?:don't|do not|no longer)\s+want\s+to\s+(?:live|be alive)\b"),
            ("high", r"\bsuicidal\b|\b(?:commit(?:ting)?|attempt(?:ed|ing)?)\s+suicide\b"),
            (
                "high",
                r"\b(?:think\w*|consider\w*|contemplat\w*|plan\w*)\s+(?:about\s+|of\s+)?suicide\b",
            ),
            ("high", r"\b(?:hang|hanging|shoot|shooting)\s+my\s*self\b"),
            (
                "high",
                r"\bjump(?:ing)?\s+(?:off|from)\s+(?:a|the|this|my)\s+(?:bridge|roof|building|cliff|balcony|ledge)",
            ),
            (
                "high",
                r"\b(?:going to|gonna|about to|ready to)\s+jump\b(?!\s+(?:in|into|on|over|rope))",
            ),
            ("high", r"\bstanding on (?:the|a|my)\s+(?:roof|ledge|bridge|edge|balcony)\b"),
            ("high", r"\b(?:have|got)\s+(?:the|my|all the|enough)\s+pills\s+(?:ready|saved)"),
            (
                "high",
                r"\b(?:better|happier) (?:off )?(?:without me|if i (?:was|were|'m|am) (?:gone|dead|not here|not around))",
            ),
            (
                "high",
                r"\b(?:plan\w*|going|gonna|want\w*|wanna|thinking about|decided)\s+(?:to\s+)?(?:overdose|od)\b",
            ),
            (
                "high",
                r"\b(?:research\w*|look\w* up|search\w*|googl\w*)\s+(?:\w+\s+){0,3}(?:ways|how) to (?:die|kill myself|end (?:it|my life))\b",
            ),
            ("high", r"\bhow (?:many|much) (?:\w+\s+){0,3}(?:it )?takes? to (?:die|kill)\b"),
            (
                "high",
                r"\b(?:going to|gonna|about to|want to)\s+(?:take|swallow)\s+(?:all|a whole bottle|every one) (?:of )?(?:my |the )?(?:pills|meds|tablets)",
            ),
            (
                "imminent",
                r"\b(?:car|engine) running in (?:the|my) garage\b|\bin (?:the|my) garage with the engine running\b",
            ),
            (
                "high",
                r"\bpainless (?:way|ways|method|methods) to die\b|\bhow (?:to|do i|can i) (?:die|kill myself) (?:painlessly|quickly)\b",
            ),
            ("high", r"\b(?:goodbye|farewell|suicide) (?:letters?|notes?)\b"),
            ("high", r"\bgiven away (?:all )?my (?:things|stuff|belongings)\b|\bsuicide note\b"),
            (
                "high",
                r"\bsaying goodbye to every(?:one|body)\b|\bwon't be (?:around|here) (?:much )?(?:longer|anymore)\b",
            ),
            ("high", _EN_SELF_OVERDOSE),
            (
                "moderate",
                r"\bwish (?:i|i'd) (?:was|were) dead\b|\bwish i (?:had|'d) never been born\b",
            ),
            (
                "moderate",
                r"\bsleep and never wake up\b|\b(?:wish i could|wanna|want to) (?:just )?disappear\b",
            ),
            (
                "moderate",
                r"\b(?:nobody|no one) would (?:even )?(?:notice|care|miss me) if i (?:died|was gone|disappeared)\b",
            ),
            (
                "moderate",
                r"\b(?:not|isn't|is not|no longer) worth living\b|\b(?:i'm|i am) (?:just )?a burden to\b",
            ),
            (
                "moderate",
                r"\bwhat's the point (?:of|in) (?:living|life|being alive)\b|\bno reason (?:for me )?to (?:live|be alive)\b",
            ),
            ("low", r"\bsuicid\w*|\bkill(?:s|ed)\s+(?:him|her|them)sel(?:f|ves)\b"),
        ),
        "self_harm": (
            (
                "high",
                r"\b(?:cut|cutting|cuts|burn|burning|burned|hurt|hurting|harm|harming)\s+my\s*self\b",
            ),
            ("high", r"\bcut(?:ting)?\s+my\s+(?:wrists?|arms?|thighs?|legs?)\b"),
            (
                "high",
                r"\b(?:i|i've|i'm|been|started|keep|want to)\s+(?:\w+\s+){0,2}self[- ]?harm(?:ing)?\b",
            ),
            (
                "high",
                r"\b(?:scratch\w*|hit\w*|bang\w*|punch\w*|bit\w*|burn\w*|cut\w*)\s+my\s+(?:\w+\s+){0,4}until (?:it|they|i)\s+(?:bleed|bruise)s?\b",
            ),
            ("high", r"\buntil (?:my\s+\w+|it|they)\s+bleeds?\b|\bstarv(?:e|ing)\s+my\s*self\b"),
            (
                "high",
                r"\b(?:hit|hitting|bang|banging)\s+my\s+head\s+(?:against|on|into)\b|\bcut\s+(?:again|deeper)\b",
            ),
            ("low", r"\bself[- ]?harm\w*|\bself[- ]?injur\w*"),
        ),
        "harm_to_others": (
            (
                "high",
                r"\b(?:want|wanna|going|gonna|i'll|i will|plan\w*|fantasi[sz]\w*|think\w* about|dream\w* about)\s+"
                r"(?:to\s+)?(?:kill|hurt|stab|shoot|murder|strangle|poison)(?:ing)?\s+(?:him|her|them|you|"
                r"everyone|everybody|people|someone|somebody|my\s+\w+|that\s+\w+|the\s+\w+)\b",
            ),
            (
                "moderate",
                r"\b(?:could|might|afraid i'll|scared i'll|worried i'll)\s+(?:really\s+)?(?:hurt|kill)\s+(?:someone|somebody|him|her|them|my\s+\w+)\b",
            ),
            (
                "high",
                r"\bshoot(?:ing)?\s+up\s+(?:my|the|a|our)\s+(?:school|office|work|class|church)\b",
            ),
        ),
        "abuse": (
            (
                "high",
                r"\b(?:he|she|they|my\s+(?:\w+'s\s+)?(?:husband|wife|partner|boyfriend|girlfriend|dad|father|mom|"
                r"mother|stepdad|stepfather|stepmom|parents?|uncle|ex))\s+(?:\w+\s+){0,2}(?:hits?|hitting|"
                r"hurts|beats?|beating|kick(?:s|ed)?|chok(?:es|ed|ing)|punch(?:es|ed)?|slap(?:s|ped)?|"
                r"strangl\w+|rap(?:ed|es))\s+me\b",
            ),
            ("high", r"\bthreaten\w*\s+to\s+(?:kill|hurt|beat)\s+me\b"),
            (
                "high",
                r"\btouch\w* me (?:at night|inappropriately|down there|when no one)|\b(?:stepfather|stepdad|uncle) (?:\w+\s+){0,2}touch\w* me\b",
            ),
            (
                "high",
                r"\blocks? me (?:in|up)\b|\b(?:doesn't|won't|does not|will not) let me (?:eat|sleep|leave the house)\b",
            ),
            (
                "high",
                r"\b(?:he|she|they)\s*(?:will|would|'ll|'d|is going to|'s going to)\s+kill\s+me\b",
            ),
            (
                "high",
                r"\b(?:i was|i've been|i got|i'm being|i am being)\s+(?:\w+\s+)?(?:raped|sexually assaulted|molested|abused|assaulted)\b",
            ),
            ("low", r"\bdomestic (?:violence|abuse)\b|\bsexual assault\b|\bchild abuse\b"),
        ),
        "medical_emergency": (
            ("imminent", _EN_SELF_OVERDOSE),
            (
                "imminent",
                r"\b(?:took|taken|swallowed)\s+(?:a\s+bunch|a\s+handful|a\s+whole\s+bottle|too\s+many)\s+(?:of\s+)?(?:\w+\s+)?(?:pills|tablets|meds)",
            ),
            (
                "imminent",
                r"\b(?:i|i've|i think i)\s+(?:just\s+)?overdosed\b|\b(?:took|taken) an overdose\b",
            ),
            (
                "imminent",
                r"\b(?:is|'s|are|'re)\s+(?:not waking up|unconscious|not breathing|unresponsive)\b",
            ),
            (
                "imminent",
                r"\b(?:isn't|is not|aren't|not) breathing\b|\bcan't wake (?:him|her|them)\b",
            ),
            (
                "imminent",
                r"\b(?:alcohol|vodka|whiskey|drunk|drank|wine|beer)\b.{0,40}\b(?:xanax|valium|benzos?|sleeping pills|opioids?|oxy\w*|fentanyl)\b",
            ),
            (
                "imminent",
                r"\b(?:won't|can't|doesn't|isn't|will not)\s+stop\s+bleeding\b|\bbleeding (?:a lot|heavily|badly)\b",
            ),
            ("imminent", r"\b(?:swallowed|drank)\s+(?:some\s+)?(?:bleach|poison|antifreeze)\b"),
            (
                "high",
                r"\b(?:can't|cannot|can not)\s+breathe\b|\bchest\s+(?:pain|hurts?|is hurting)\b|\bmy chest hurts\b",
            ),
        ),
    },
    "zh": {
        "suicide": (
            (
                "high",
                r"不想再?活|活不下去了|(?:想|打算|准备|计划|决定|就)去?死|死了算了|不如死了|还不如死",
            ),
            ("high", r"(?:想|真想|不如|干脆|就)一了百了|一了百了算了|死了就?一了百了"),
            ("high", r"(?:有|想|起了?|产生了?)过?轻生"),
            ("high", r"(?:想|要|打算|准备|计划|考虑|决定|尝试|试图|试过)过?去?自杀"),
            (
                "high",
                r"(?:饿|淹|吊|烧|毒)死自己|自我了断|了结自己|死了(?:也好|更好|倒好)|跳(?:进去|河|江|海)",
            ),
            ("high", r"结束(?:自己的?生命|自己|这一切)|(?:想|要|打算|准备|去|就)跳楼|跳下去"),
            ("high", r"东西.{0,3}送(?:人|给)|没有我[，,]?.{0,8}(?:更好|更轻松|好过)|写好了?遗书"),
            (
                "high",
                r"(?:药|安眠药).{0,6}(?:准备好|备好|攒够|买好)|(?:攒|囤)了.{0,4}(?:安眠药|药)",
            ),
            (
                "high",
                r"死了对(?:大家|所有人|家人|谁)都好|死了(?:大家|他们|家人)?就?都?(?:解脱|轻松)",
            ),
            (
                "high",
                r"(?:怎么|如何|怎样)(?:才能)?(?:自杀|死)|自杀的?方法|(?:不痛苦|无痛)的?(?:死法|方法)",
            ),
            ("high", _ZH_SELF_OVERDOSE),
            (
                "moderate",
                r"活着(?:真|好|太)?(?:没意思|没意义|没什么意义|没什么意思|好累|太累|太痛苦)",
            ),
            ("moderate", r"(?:是个?|成了)(?:累赘|负担)|不想再坚持|坚持不下去了|撑不下去了"),
            (
                "moderate",
                r"不要醒来|不想再醒来|一睡不醒|(?:希望|想)(?:自己)?(?:从这个世界上?)?(?:死了|消失)|以后(?:也)?用不上了",
            ),
            ("low", r"自杀|轻生|跳楼|遗书"),
        ),
        "self_harm": (
            ("high", r"割腕|(?:我|想|又|就|经常|一直|开始)[^，。！？]{0,3}自残|伤害自己"),
            ("high", r"(?:刀|刀片|玻璃)[^，。！？]{0,3}(?:划|割)(?:自己|手|胳膊)"),
            (
                "high",
                r"(?:烫|烧|掐|咬|打|划|割|撞)伤?自己|(?:划|割)(?:手|手臂|手腕|胳膊|大腿)|撞墙",
            ),
            ("low", r"自残|自伤"),
        ),
        "harm_to_others": (
            (
                "high",
                r"(?:想|要|打算|准备|真想)把(?:他|她|他们|她们|那些人|所有人).{0,3}(?:杀|弄死|干掉|砍死)",
            ),
            (
                "high",
                r"(?:报复|弄死|杀了|杀掉|捅死|砍死|干掉)(?:他|她|他们|她们|那个|我(?:老板|同事|室友|老公|丈夫|老婆|妻子|爸|妈))",
            ),
        ),
        "abuse": (
            (
                "high",
                r"(?:老公|丈夫|男朋友|男友|前夫|老婆|妻子|女朋友|爸|父亲|妈|母亲|继父|继母|他|她)"
                r"[^，。！？]{0,6}(?:打|揍|踢|掐|扇|抽)[了得]?我(?!电话|手机|的电话)",
            ),
            ("high", r"对我动手|对我施暴|动手打我"),
            ("high", r"(?:用|拿)(?:皮带|棍子|衣架|刀|鞭子|烟头)(?:抽|打|砸|捅|烫)我"),
            ("high", r"(?:继父|继母|叔叔|舅舅|老师|教练|爸|哥)[^，。！？]{0,6}摸我(?!的?头)"),
            ("high", r"(?:被|遭受|遭到)了?(?:家暴|性侵|强奸|猥亵|虐待)"),
            ("high", r"(?:威胁|扬言|说)说?要?(?:杀|弄死|打死)了?我"),
            ("low", r"家暴|家庭暴力|性侵"),
        ),
        "medical_emergency": (
            ("imminent", _ZH_SELF_OVERDOSE),
            (
                "imminent",
                r"(?:吃|吞|服)了?(?:一整瓶|整瓶|一瓶|好多|很多|一大把|几十)(?:片|颗|粒)?的?(?:安眠药|药片|药)",
            ),
            ("imminent", r"(?:喝|吃)了?(?:农药|百草枯|敌敌畏|老鼠药|消毒水)"),
            (
                "imminent",
                r"血止不住|止不住血|流了(?:很多|好多)血|大出血|叫不醒|昏迷|不省人事|失去意识|没有?呼吸了",
            ),
            ("high", r"喘不上气|喘不过气|呼吸困难|无法呼吸|胸口?(?:剧痛|很痛|好痛|很疼|好疼)|胸痛"),
        ),
    },
}

# Figures of speech blanked out before matching: no crisis meaning.
IDIOMS: dict[str, tuple[str, ...]] = {
    "en": (
        r"\b(?:is|are|'s|'re|was|were)\s+killing\s+me\b",
        r"\b(?:could|would|'d)\s+kill\s+(?:for|to)\b|\bkill(?:ed|ing)?\s+it\b",
        r"\bkill(?:ing)?\s+(?:some\s+|the\s+)?time\b",
        r"\bkill\s+(?:-9\s+)?(?:the\s+|a\s+|this\s+|that\s+)?(?:process|task|job|app|program|server|"
        r"switch|lights?|engine|mood|vibe|bacteria|germs|weeds|pid)\b",
        r"\bsuicide\s+(?:squad|doors|mission|run|pass|knot|sprints?|drills?|burpees?)\b",
        r"\bdying\s+(?:to|for)\b|\bdied\s+laughing\b|\bdie\s+laughing\b|\bto die for\b",
        r"\b(?:cut|hurt|burn(?:ed|t)?)\s+myself\s+(?:shaving|cooking|playing|lifting|while|on\s+(?:a|the)|"
        r"by accident|accidentally|in the kitchen|at the gym)",
        r"\bcut\s+myself\s+(?:some\s+)?slack\b|\bsh(?:oo|o)t(?:ing)?\s+myself\s+in\s+the\s+foot\b",
        r"\b(?:beat|beats)\s+(?:me|us)\s+(?:at|in)\b",
        r"\b(?:can't|couldn't)\s+breathe\s+(?:from|for)\s+laugh\w*",
    ),
    "zh": (
        r"(?:笑|累|饿|热|冷|困|气|吓|烦|忙|渴|痛|疼|急|羡慕|美|爱|难|闷|丑|帅|穷|撑|晒|冻|无聊)死(?:我|人|了|啦|掉)",
        r"想死(?:你|您|他|她|它|你们|他们)",
        r"得要死|要死了啦|死定了|死机|死党|死心|该死|死磕|死循环|死线",
        r"跳楼价|跳楼大?甩卖|剧本杀|杀青|秒杀|杀毒|杀价|杀时间|杀杀时间|杀手锏|杀进程|杀疯了|割韭菜",
        r"笑得?喘不[上过]气",
        r"(?:难|烦|累|饿|困|气|热|冷|尬|尴尬|无聊|丢人|丢脸)(?:到|得)我?想死",
    ),
}

# A cue right before a match in the same clause negates it ("never", "不会", "从来没有想过").
NEGATION: dict[str, str] = {
    "en": r"(?:\bnever|\bnot|n't|\bno longer)\s+(?!(?:sure|know|stop|help|care)\b)(?:\w+\s+){0,2}$",
    "zh": r"(?:不|没|别|绝不|从不|从没|从未|从来没|并不|并没)(?:有|会|要|是|再|曾|打算|想过|会去|敢|真的|去)*$",
}

# History markers ("years ago", "以前") and markers that the risk is ongoing ("again", "最近").
PAST: dict[str, str] = {
    "en": r"\b(?:used to|years ago|a long time ago|when i was (?:a kid|younger|little|a teen)|in (?:high|middle) school|as a (?:kid|teen|teenager))\b",
    "zh": r"以前|曾经|小时候|年前|上学的时候|那时候",
}
ONGOING: dict[str, str] = {
    "en": r"\b(?:again|still|lately|recently|these days|this week|tonight|today)\b",
    "zh": r"又|最近|还在|现在还|这几天|今天|今晚|一直",
}

# Prepared means or a location of danger: raise to "imminent" on their own.
MEANS: dict[str, str] = {
    "en": r"\b(?:have|got|bought|with)\s+(?:a|my|the|some)\s+(?:gun|rope|knife|pistol|rifle|blade)\b|"
    r"\b(?:have|got)\s+(?:the|my|all the|enough)\s+pills\s+(?:ready|saved)|"
    r"\bstanding on (?:the|a|my)\s+(?:roof|ledge|bridge|edge|balcony)\b",
    "zh": r"(?:药|安眠药|绳子|刀|农药|炭|煤气).{0,6}(?:准备好|买好|备好|攒够)|买好了?(?:绳子|药|刀|炭)|"
    r"站在(?:天台|楼顶|桥|窗台|楼上|江边|河边|海边|湖边)|(?:拿着|拿了|带着)(?:刀|枪)",
}
# Timing raises to "imminent" only together with intent ("going to", "就", "打算").
TIMING: dict[str, str] = {
    "en": r"\b(?:tonight|today|right now|tomorrow|this weekend|in an hour|(?:this|on) (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b",
    "zh": r"今晚|今天|现在|马上|明天|待会|一会儿|这周末",
}
INTENT: dict[str, str] = {
    "en": r"\b(?:going to|gonna|about to|plan(?:ning)? to|decided to|ready to|i'll|i will|doing it|do it)\b",
    "zh": r"就|打算|准备|决定",
}

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
