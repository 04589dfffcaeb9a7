"""English crisis-detection rules for `carellm.safety` (assembled in `carellm.safety.rules`).

Patterns run on normalised text (NFKC, lower case, ASCII apostrophes). Each category
lists specific phrases first, then general constructions that carry over to unseen
wording: first-person intent + an ending verb, prepared means + intent or secrecy,
finality/goodbye statements, a self-injury verb on one's own body with a tool or a
purpose, a harm verb aimed at a person, a person + a violent verb aimed at "me".
"""

from __future__ import annotations

_DRUGS = (
    r"(?:pills|tablets|meds|medications?|painkillers|paracetamol|tylenol|acetaminophen|"
    r"ibuprofen|advil|aspirin|xanax|valium|benadryl|insulin|antidepressants|sleeping pills|"
    r"oxy\w*|opioids|benzos)"
)
# First-person overdose: counts as a suicide attempt and as a medical emergency.
SELF_OVERDOSE = (
    r"\bi\s+(?:\w+\s+)?(?:took|swallowed|have taken|'ve taken|downed|popped)\s+"
    r"(?:like\s+|about\s+|around\s+|maybe\s+|almost\s+|over\s+|at least\s+)?"
    r"(?:a\s+(?:whole\s+)?(?:bottle|box|pack|packet|handful|strip)\s+of\s+|all\s+(?:of\s+)?(?:my|the)\s+|"
    r"half\s+(?:a|the|my)\s+(?:bottle|box|pack)\s+of\s+|(?:way\s+|far\s+)?too\s+many\s+|"
    r"(?:\d{2,}|twenty|thirty|forty|fifty|a hundred)\s+(?:of\s+)?(?:my\s+)?)(?:\w+\s+)?" + _DRUGS
)
# Who an abuse report names as the one doing it.
_ABUSER = (
    r"(?:he|she|they|my\s+(?:\w+'s\s+)?(?:husband|wife|partner|boyfriend|girlfriend|dad|father|"
    r"mom|mum|mother|stepdad|step-dad|stepfather|stepmom|stepmother|parents?|uncle|brother|"
    r"sister|grandpa|grandfather|cousin|coach|teacher|ex|fianc\w+|landlord))"
)
# Someone else, as the target of a threat.
_TARGET = (
    r"(?:him|her|them|you|everyone|everybody|people|someone|somebody|my\s+\w+|that\s+\w+|"
    r"the\s+\w+|his\s+\w+|her\s+\w+)"
)
_INTENT = r"(?:want|wanna|going|gonna|about|ready|plan\w*|decided|need|i'll|i will|i'm going)\s+(?:to\s+)?"

RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "suicide": (
        # ASCII look-arounds, not \b: CJK characters count as word characters ("我想kms").
        (
            "high",
            r"\bkill(?:ing)?\s+my\s*self\b|(?<![a-z])(?:kms|ctb|sewerslide|unaliv(?:e|ing))(?![a-z])",
        ),
        ("high", r"\b(?:off|offing|top|topping)\s+my\s*self\b|\bbetter off dead\b"),
        ("high", r"\b(?:want|wanna|wanted|ready|deserve)\s+(?:to\s+)?(?:die|be dead)\b"),
        ("high", r"\bend(?:ing)?\s+(?:my\s+(?:own\s+)?life|it\s+all|things\b(?!\s+with))\b"),
        # Intent + an ending verb: "gonna end it tonight", "ready to leave this world".
        (
            "high",
            _INTENT + r"(?:finally\s+|just\s+)?(?:end\s+(?:it|this|everything)(?=\s*(?:$|[.,!?;]|"
            r"\s+(?:all|now|tonight|today|for good|once and for all|forever|this\s+\w+)\b))|"
            r"leave this world|be gone for good|check out for good|never wake up)",
        ),
        ("high", r"\btak(?:e|ing)\s+my\s+(?:own\s+)?life\b"),
        ("high", r"\b(?:don't|do not|no longer)\s+want\s+to\s+(?:live|be alive)\b"),
        ("high", r"\bsuicidal\b|\b(?:commit(?:ting)?|attempt(?:ed|ing)?)\s+suicide\b"),
        (
            "high",
            r"\b(?:think\w*|consider\w*|contemplat\w*|plan\w*)\s+(?:about\s+|of\s+)?suicide\b",
        ),
        ("high", r"\b(?:hang|hanging|shoot|shooting|drown|drowning)\s+my\s*self\b"),
        ("high", r"\bslit(?:ting)?\s+my\s+(?:wrists?|throat)\b"),
        # Methods: a drop, a vehicle, a train.
        (
            "high",
            r"\bjump(?:ing)?\s+(?:off|from)\s+(?:a|the|this|my)\s+(?:bridge|roof|building|cliff|balcony|ledge)",
        ),
        (
            "high",
            r"\b(?:going to|gonna|about to|ready to)\s+jump\b(?!\s+(?:in|into|on|over|rope))",
        ),
        (
            "high",
            r"\b(?:step|jump|walk|throw\w* myself|lie down|lay down)\w*\s+(?:out\s+)?(?:in front of|under)\s+"
            r"(?:a|an|the)\s+(?:\w+\s+)?(?:train|bus|truck|lorry|car|subway)\b|\bwalk\w*\s+into\s+(?:oncoming\s+)?traffic\b",
        ),
        (
            "high",
            r"\b(?:drive|driving|crash|crashing|steer|steering)\s+(?:my|the)\s+car\s+(?:off|into)\s+"
            r"(?:a|the)\s+(?:river|lake|sea|ocean|wall|tree|cliff|bridge|truck|oncoming\s+traffic)\b",
        ),
        ("high", r"\bstanding on (?:the|a|my)\s+(?:roof|ledge|bridge|edge|balcony)\b"),
        (
            "high",
            r"\bnot coming back (?:down|up|from (?:this|here))\b|\bwon't (?:be )?com(?:e|ing) back down\b",
        ),
        # Prepared means: stockpiled pills, a noose, means bought with a secret purpose.
        ("high", r"\b(?:have|got)\s+(?:the|my|all the|enough)\s+pills\s+(?:ready|saved)"),
        (
            "high",
            r"\b(?:sav(?:e|ed|ing)\s+up|stockpil\w*|hoard\w*|stash\w*)\s+(?:all\s+)?(?:of\s+)?"
            r"(?:my\s+|the\s+|some\s+)?(?:\w+\s+)?" + _DRUGS + r"\b",
        ),
        ("high", r"\b(?:tied|tie|tying|made|make|making|have|got|bought)\s+(?:a|the|my)\s+noose\b"),
        (
            "high",
            r"\b(?:bought|got|ordered|have)\s+(?:a|some|the)\s+(?:rope|gun|pistol|charcoal|razor blades?|blades?)\b"
            r"[^\n]{0,40}?\b(?:(?:not|won't|can't) (?:gonna |going to )?(?:say|tell)|don't ask|"
            r"what (?:it's|it is|they're) for|when the time comes)",
        ),
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
            r"\bhow (?:many|much)\s+(?:of\s+)?(?:\w+\s+){0,3}" + _DRUGS + r"\s+(?:it\s+)?"
            r"(?:would|will|does|did)?\s*(?:it\s+)?takes?\b(?!\s+(?:for|to (?:work|kick in|help|cure|treat)))",
        ),
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
        # Goodbyes and finality: letters left to be found, a last message.
        ("high", r"\b(?:goodbye|farewell|suicide) (?:letters?|notes?)\b"),
        ("high", r"\bgiven away (?:all )?my (?:things|stuff|belongings)\b|\bsuicide note\b"),
        (
            "high",
            r"\bsaying goodbye to every(?:one|body)\b|\bwon't be (?:around|here) (?:much )?(?:longer|anymore)\b",
        ),
        (
            "high",
            r"\b(?:wrote|written|writing|left|leaving)\s+(?:\w+\s+){0,2}(?:letters|notes)\s+(?:to|for)\s+"
            r"(?:my\s+\w+|everyone|everybody|all of (?:you|them))\b[^.!?]{0,60}\bfind\b",
        ),
        (
            "high",
            r"\bthis (?:is|will be) my (?:last|final) (?:message|post|text|note|words|goodbye|night)\b"
            r"(?!\s+(?:before|for|of|until|at|on))|\bby the time (?:you|anyone|someone|they) (?:read|see|find)s? this\b",
        ),
        (
            "high",
            r"\b(?:find|found) my body\b|\bgoodbye (?:forever|world|cruel world)\b",
        ),
        ("high", SELF_OVERDOSE),
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
        # Hopelessness: moderate alone, imminent with means or timing + intent.
        (
            "moderate",
            r"\b(?:can't|cannot) go on\b(?!\s+(?:a|the|with|to)\b)|\bnothing (?:left )?to live for\b|"
            r"\b(?:i'm|i am) done with (?:life|living|it all|this world)\b",
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
        # Intransitive "cutting" is self-harm slang: "been cutting again".
        (
            "high",
            r"\b(?:been|started|keep|kept|still|i'm|am|was|stop)\s+cutting\s*(?=$|[.,!?;]|\s+(?:again|more|"
            r"deeper|every|at night|lately|recently|daily|a lot)\b)|\bcutting again\b",
        ),
        (
            "high",
            r"(?<![a-z])(?:sh|self[- ]?harm)(?![a-z])\s+(?:again|relapse|urges?|scars?|cuts?|wounds?)\b|"
            r"\brelaps\w*\s+(?:on|into|with|back into)\s+(?:sh|self[- ]?harm\w*|cutting|burning)\b",
        ),
        # A self-injury verb on one's own body, with a tool or a purpose.
        (
            "high",
            r"\b(?:cut|cutting|burn\w*|carv\w*|slash\w*|scratch\w*|slic\w*)\s+(?:into\s+)?my\s+(?:own\s+)?"
            r"(?:arms?|wrists?|thighs?|legs?|skin|stomach|hips?|hands?|chest)\b[^.!?]{0,30}?\b(?:with\s+(?:a|my|the)?\s*"
            r"(?:lighter|cigarette|razor|blade|knife|scissors|compass|glass|sharpener|needle|lighter)|"
            r"on purpose|to feel|until|deeper)",
        ),
        (
            "high",
            r"\b(?:hide|hiding|hid|cover\w*)\s+(?:up\s+)?(?:my|the)\s+(?:fresh\s+|new\s+)?(?:cuts|scars|wounds|burns)\b",
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
            r"(?:to\s+)?(?:kill|hurt|stab|shoot|murder|strangle|poison|choke)(?:ing)?\s+"
            + _TARGET
            + r"\b",
        ),
        (
            "high",
            r"\b(?:beat|beating|kick)\s+the\s+(?:shit|crap|hell|life)\s+out\s+of\b|\bput\s+(?:him|her|them)\s+in\s+(?:the\s+)?hospital\b|"
            r"\bmake\s+"
            + _TARGET
            + r"\s+pay\s+for\s+what\s+(?:he|she|they|you)(?:'s|'ve| has| have)?\s+(?:did|done)\b",
        ),
        (
            "moderate",
            r"\b(?:could|might|afraid i'll|scared i'll|worried i'll)\s+(?:really\s+)?(?:hurt|kill)\s+(?:someone|somebody|him|her|them|my\s+\w+)\b",
        ),
        (
            "high",
            r"\bshoot(?:ing)?\s+up\s+(?:my|the|a|our)\s+(?:school|office|work|class|church)\b",
        ),
        # A weapon taken to a place full of people.
        (
            "high",
            r"\b(?:gun|rifle|pistol|weapon|firearm|knife)s?\b[^.!?]{0,60}?\b(?:bring|take|carry|brought|took)\w*\s+"
            r"(?:it|them|one|a\s+\w+|my\s+\w+)\s+(?:in)?to\s+(?:school|class|work|the office|campus|church|the mall)\b",
        ),
    ),
    "abuse": (
        (
            "high",
            _ABUSER + r"\s+(?:\w+\s+){0,2}(?:hits?|hitting|hurts|beats?|beating|kick(?:s|ed)?|"
            r"chok(?:es|ed|ing)|punch(?:es|ed)?|slap(?:s|ped)?|strangl\w+|rap(?:ed|es)|whip\w*|burn(?:s|ed))\s+me\b",
        ),
        (
            "high",
            _ABUSER
            + r"\s+(?:\w+\s+){0,2}(?:push\w*|shov\w*|thr[eo]w\w*|drag\w*|slam\w*|pin\w*|grab\w*)\s+me\s+"
            r"(?:down|into (?:a|the) (?:wall|door|table|floor|ground)|against|across|off|to the (?:ground|floor)|"
            r"by the (?:hair|throat|neck))\b|"
            + _ABUSER
            + r"\s+(?:\w+\s+){0,2}thr[eo]w\w*\s+(?:a\s+|the\s+|his\s+|her\s+)?(?:bottle|glass|plate|chair|knife|mug|cup|"
            r"phone|shoe|lamp|pan|remote|beer)s?\s+at (?:me|my (?:head|face))\b",
        ),
        ("high", r"\bthreaten\w*\s+to\s+(?:kill|hurt|beat)\s+me\b"),
        (
            "high",
            r"\btouch\w* me (?:at night|inappropriately|down there|when no one)|"
            r"\b(?:stepfather|stepdad|step-dad|uncle|grandpa|grandfather|cousin|brother|dad|father|coach|"
            r"teacher|tutor|neighbou?r|boyfriend)\b[^.!?]{0,60}?\b(?:touch\w*|grop\w*|fondl\w*)\s+me\b"
            r"(?!\s+on\s+the\s+(?:shoulder|arm|back|head|hand))",
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
        ("imminent", SELF_OVERDOSE),
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
            r"\b(?:is|'s|are|'re)\s+(?:not waking up|unconscious|not breathing|unresponsive|having a seizure|seizing)\b",
        ),
        (
            "imminent",
            r"\b(?:isn't|is not|aren't|not) breathing\b|\bcan't wake (?:him|her|them)\b|\blips (?:are |is )?(?:turning |going )?blue\b",
        ),
        (
            "imminent",
            r"\b(?:he|she|i|my\s+(?:\w+\s+)?(?:mom|mum|mother|dad|father|friend|husband|wife|partner|son|daughter|"
            r"baby|brother|sister|grandma|grandpa|grandmother|grandfather|boyfriend|girlfriend|roommate))\s+"
            r"(?:just\s+)?(?:collapsed|passed out and)\b",
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
            r"\b(?:can't|cannot|can not)\s+breathe\b|\bchest\s+(?:pain|hurts?|is hurting)\b|\bmy chest hurts\b|"
            r"\bchest (?:feels )?(?:crushed|crushing|like it's being crushed)\b|"
            r"\bface (?:is )?drooping\b",
        ),
    ),
}

# Figures of speech blanked out before matching: no crisis meaning.
IDIOMS: tuple[str, ...] = (
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
    r"\bshoot(?:ing)?\s+(?:the\s+|a\s+|some\s+)?(?:photos?|pictures?|video|film|movie|scene|breeze|hoops|shot|ball)\b",
    r"\b(?:want to |going to |gonna |could |might |will |gonna )?die (?:of|from) (?:embarrassment|shame|boredom|"
    r"laughter|laughing|cringe|cuteness|happiness|jealousy|envy|excitement|old age)\b",
    r"\b(?:murder|kill|destroy|slaughter|wreck|smash)\w* (?:the other team|the competition|(?:them|it|this) in "
    r"(?:ranked|the (?:game|match|final|league|exam|interview)))\b",
)

# A cue right before a match in the same clause negates it ("never", "not").
NEGATION = r"(?:\bnever|\bnot|n't|\bno longer)\s+(?!(?:sure|know|stop|help|care)\b)(?:\w+\s+){0,2}$"
# History markers and markers that the risk is ongoing.
PAST = r"\b(?:used to|years ago|a long time ago|when i was (?:a kid|younger|little|a teen)|in (?:high|middle) school|as a (?:kid|teen|teenager))\b"
ONGOING = r"\b(?:again|still|lately|recently|these days|this week|tonight|today)\b"
# Prepared means or a place of danger: raise to "imminent" on their own.
MEANS = (
    r"\b(?:have|got|bought|with)\s+(?:a|my|the|some)\s+(?:\w+'s\s+)?(?:gun|rope|noose|knife|pistol|rifle|blade)\b|"
    r"\b(?:have|got)\s+(?:the|my|all the|enough)\s+pills\s+(?:ready|saved)|"
    r"\b(?:sav(?:e|ed|ing)\s+up|stockpil\w*|hoard\w*|stash\w*)\s+(?:my\s+|the\s+)?(?:\w+\s+)?(?:pills|meds|tablets)\b|"
    r"\b(?:standing|sitting|i'm|i am)\s+(?:up\s+)?on (?:the|a|my)\s+(?:roof|rooftop|ledge|bridge|edge|balcony)\b"
)
# Timing raises to "imminent" only together with intent.
TIMING = r"\b(?:tonight|today|right now|tomorrow|this weekend|in an hour|(?:this|on) (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b"
INTENT = r"\b(?:going to|gonna|about to|plan(?:ning)? to|decided to|ready to|i'll|i will|doing it|do it|tonight's the night)\b"
