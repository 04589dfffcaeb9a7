"""English concept combinations for `carellm.safety` (see `carellm.safety.concepts`).

Each rule is ``(level, pattern)`` or ``(level, (pattern, pattern, ...))``: a tuple fires
only when every pattern matches somewhere in the text (who × intent × means × time).
Patterns are built from small vocabularies so new wording that combines known concepts
is caught without a literal phrase for it. Text is normalised first
(`carellm.safety.normalize`): "kms" is "kill myself", "wanna" is "want to".
"""

from __future__ import annotations

# Who: the writer, and the people at risk or doing harm.
_I = r"\bi(?:'m|'ve|'ll|'d| am| have| will| would)?\b"
_CHILD = (
    r"(?:baby|newborn|infant|toddler|son|daughter|kids?|child|children|little one|boy|girl|twins?)"
)
_HER = r"(?:her|him|them|the\s+" + _CHILD + r"|my\s+" + _CHILD + r")"
# Intent or fear of acting, in the first person.
_WILL = (
    r"(?:i'm going to|i am going to|i'll|i will|i want to|i'm about to|i might|i could|"
    r"i'm (?:afraid|scared|terrified|worried) (?:i'll|i will|i might|i'm going to)|"
    r"i swear (?:i'll|i'm going to)|i feel like|i'm so close to|i'm gonna end up|i almost)"
)
_HARM_VERB = (
    r"(?:shake|shaking|smother|suffocate|strangle|choke|drown|throw|hit|hurt|beat|stab|shoot|"
    r"kill|punch|slap|snap|drop|squeeze|harm|poison)"
)
_WEAPON = r"(?:gun|knife|rifle|shotgun|pistol|machete|bat|axe|weapon|blade)"
_DEATH = r"(?:die|dying|be dead|kill myself|end it|end my life|not exist|disappear|be gone)"
_ED = (
    r"\blost \d+ ?(?:kg|kgs|kilos|lbs|pounds)\b|\bfeel (?:so )?fat\b|\b(?:calories|not eating|haven't eaten|stopped eating|starv\w*|fasting|purg\w*|throw(?:ing)? up|"
    r"vomit\w*|laxatives?|diet\w*|weigh\w*|anorexi\w*|bulimi\w*|binge\w*|skipping meals)\b"
)
_FINAL = (
    r"\b(?:won't be (?:around|here)|after i'm gone|when i'm gone|once i'm gone|none of this (?:is|was) "
    r"(?:your|anyone's) fault|(?:please )?don't (?:be sad|blame yourself|cry for me|miss me|look for me)|"
    r"remember me|this is goodbye|my goodbyes?|say(?:ing)? goodbye|last time (?:you'll|i'll|we'll)|"
    r"won't need (?:it|them|these|this|my \w+) (?:anymore|any more|where i'm going)|"
    r"(?:gave|give|giving) away (?:all )?my|take care of yourselves?|i'm sorry for everything|"
    r"thank you for everything|forgive me|when i'm not (?:here|around)|if you don't hear from me|"
    r"(?:just )?know (?:that )?i loved you|won't be (?:a problem|a burden|bothering (?:you|anyone)) "
    r"(?:anymore|much longer|for long)|(?:gave|give|giving|given) (?:away )?(?:all )?my \w+ (?:to \w+(?: \w+)? )?and my)"
)
_CARE_FOR_ME = (
    r"\b(?:look after|take care of|feed|walk|keep|adopt|water)\s+(?!yourself)(?:\w+\s+){0,2}(?:for me|when i'm gone)"
    r"|\bthank you for being (?:a|my|such)\b|\blove you (?:all|x|always|guys)\b|\byou were (?:always )?the best\b"
)
_TIME = r"\b(?:(?:tonight|today) is the (?:night|day)|at midnight|at \d+ ?(?:am|pm)|tonight|today|tomorrow|this weekend|after this weekend|by morning|in an hour|soon|right now|after (?:tonight|today|this))\b"

_MEANS = (
    r"(?:pills|tablets|meds|rope|noose|knife|blade|razor|gun|shotgun|rifle|pistol|charcoal|bottle|cord|belt|"
    r"hose|exhaust|tracks|express|platform|train)"
)
_EDGE = (
    r"\b(?:(?:at|on) the (?:top|edge) of|on the (?:edge|ledge|roof|railing|bridge|tracks)|over the (?:edge|railing)|"
    r"standing on (?:the|a) (?:chair|stool|ledge|edge)|parked at the top)\b"
)

# Sentence-level concepts: self × wish × death, in any order and wording.
_SELF = r"\b(?:i|i'm|i've|i'd|i'll|me|my|myself)\b"
_WANT_STRONG = (
    r"\b(?:want|wanna|ready|going to|plan(?:ning)?|considering|thinking (?:about|of)|decided|intend\w*|"
    r"need|about to|gonna|i'll|trying to)\b"
)
_WANT_SOFT = (
    r"\b(?:wish|hope|hoping|would be (?:nice|a relief|better|easier|good)|(?:a )?relief|disappointed|if only|"
    r"can't (?:picture|imagine|see)|don't (?:really )?see|why am i still|tired of|done with|sick of|"
    r"wouldn't mind|think it would be|be (?:fine|ok|okay|happy|glad|relieved) if)\b"
)
_DEATH = (
    r"\b(?:die(?! (?:of|from|laughing|down|hard))|be dead|dead (?:inside|already)|death(?! of me| metal| star)|"
    r"(?:not|never) (?:to )?exist|stop existing|not be (?:alive|here|around)|(?:not|never) (?:wake|waking) up|"
    r"(?:i )?woke up|kill myself|end (?:my|this) (?:life|existence)|end it(?: all)?|suicid\w*|check out of (?:this|life)|"
    r"be gone|gone forever|never (?:been )?born|a coma|future for myself|alive (?:at|by|in) \d+|still (?:here|alive)|"
    r"(?:not|n't) (?:live|living)|overdos\w*|hang myself|sleep forever|jump off|jump in front|step in front|"
    r"drown myself|slit my|disappear forever|cease to exist|the other side|walk off a (?:short )?(?:bridge|pier|cliff)|"
    r"walk into the (?:sea|ocean|river|lake)|(?:life|it all|everything) (?:to be |be |is )?over|(?:never|didn't) woke up)\b"
)
_FAREWELL = (
    r"\b(?:goodbye|farewell|last (?:time|message|post|words|night)|won't (?:be (?:here|around)|hear from me|see me)|"
    r"after i'm gone|when i'm gone|(?:nobody|no one) has to deal with|by then it'll be (?:done|over)|it'll (?:all )?be over|"
    r"deserves? better than me|a good home|forget (?:about )?me|don't (?:miss|mourn|look for) me|remember me|"
    r"my affairs in order|paying off (?:all )?my debts|cancel\w* (?:all )?my (?:subscriptions|accounts|plans)|"
    r"(?:wrote|written|updated|made) (?:my|a) will|my passwords?|scheduled (?:an? )?(?:email|message|post|text)|"
    r"gave away|giving away|given away|left (?:a )?(?:letter|note)s?|log(?:ging)? off for good|signing off for good|"
    r"it's been (?:a ride|real|fun|nice))\b"
)

# fmt: off
RULES: dict[str, tuple[tuple[str, str | tuple[str, ...]], ...]] = {
    "suicide": (
        ("high", ("@sentence", _DEATH, _SELF, _WANT_STRONG)),
        ("moderate", ("@sentence", _DEATH, _SELF, _WANT_SOFT)),
        ("moderate", r"\b(?:easier|better|nicer|simpler|a relief) (?:to|if i could) (?:just )?(?:not be (?:here|alive|around)|die|disappear|not exist|not wake up|sleep forever|end it)\b"),
        ("high", r"\b(?:instructions|plans?|arrangements?|wishes|playlist|songs?|music) for my (?:own )?funeral\b|\b(?:planned|planning|arranged|organi[sz]ed) my (?:own )?funeral\b"),
        ("imminent", (r"\bgarage\b", r"\b(?:engine|car|exhaust|hose)\b", r"\b(?:running|on|closed|shut|sealed|taped)\b", _SELF)),
        ("high", ("@sentence", r"\b(?:voices?|angels?|god|spirits?|aliens?|the devil|demons?|ghosts?)\b", r"\b(?:telling|tell|told|say|saying|says|calling|call|want|wants|command\w*|order\w*)\b", r"\b(?:die|leave (?:my|this) body|join (?:them|him|her)|time to go|kill|jump|hurt|cut|end|sacrifice)\b")),
        ("high", ("@twice", _FAREWELL)),
        ("imminent", (_FAREWELL, _TIME, r"\b(?:done|over|gone|goodbye|last)\b")),
        ("high", (r"\b(?:join|be with|see) (?:him|her|them|my \w+)(?: again)?\b", r"\b(?:died|passed away|dead|in heaven|lost (?:him|her))\b")),
        ("moderate", r"\b(?:every|each) (?:morning|day) i'm (?:\w+ )?(?:disappointed|upset|sad|angry) (?:that )?i woke up\b|\bwhy (?:did|do) i (?:even |still )?(?:wake|keep waking) up\b"),
        # Hoping or accepting that death comes: "hoping my heart just stops".
        ("moderate", (r"\b(?:hope|hoping|wish|wishing|pray|praying|want|relieved|wouldn't mind|be (?:kind of |so )?(?:glad|fine|ok|okay|nice))\b", r"\b(?:(?:my )?heart (?:would |just )?stops?|die in my sleep|(?:got|get|was|were) hit by|(?:a|the) (?:\w+ )?(?:crash|accident) (?:took|killed) me|never wake|don't wake|not wake|stopp?ed existing|wasn't here|weren't here)\b")),
        ("moderate", r"\b(?:easier|better|happier|lighter|simpler) (?:for (?:everyone|everybody|them|all)\s+)?if i (?:wasn't|weren't|was not|were not|didn't exist|was gone|were gone|disappeared|died|wasn't around)\b"),
        ("moderate", r"\b(?:what's|what is|is there|there's no|no|don't see (?:the|any)|can't see (?:the|any)|lost (?:the|any))\s+(?:even\s+|really\s+)?(?:the\s+|a\s+|any\s+)?(?:point|reason|purpose)\s+(?:in|of|to|for)\s+(?:\w+\s+){0,2}(?:living|life|waking up|getting up|going on|carrying on|being (?:alive|here)|trying|anything|any of (?:it|this)|existing|continuing|me)\b"),
        ("moderate", r"\bforever would be (?:fine|ok|okay|nice|better)\b"),
        ("high", r"\b(?:and|to) (?:never|not) (?:come|coming) back\b|\bgo to sleep and not\b"),
        # Prepared means or a place of danger, with intent or time: imminent.
        (
            "high",
            r"\b"
            + _MEANS
            + r"\b(?: \w+){0,3} (?:ready|lined up|counted(?: out)?|in front of me|on my (?:desk|bed|table)|in my (?:hand|pocket|bag)|tied|loaded|sharpened)\b|\b(?:rope|noose) is (?:tied|up|ready)\b|\bi'm (?:taking|swallowing) (?:them|it|all of them)\b",
        ),
        ("imminent", (r"\b" + _MEANS + r"\b", r"\b(?:ready|lined up|counted|in front of me|on my desk|tied|loaded|taped|bought|in my lap|in my hand|step in front|going to (?:step|jump|take))\b", r"\b(?:tonight|now|right now|at midnight|in (?:a few|\d+) minutes|taking them|standing on|doing it|next (?:train|express|one))\b")),
        ("imminent", (_EDGE, r"\b(?:going (?:over|to jump)|jump|step off|let go|not afraid|goodbye|in (?:a few|\d+) minutes|now|tonight)\b")),
        # Passive ideation: wishing not to wake up, to vanish, life without a point.
        ("moderate", r"\b(?:not|never|don't|didn't|wouldn't) (?:have to )?wak(?:e|ing) up\b"),
        ("moderate", r"\bwish (?:i|i'd) (?:was|were|could be) (?:dead|gone|never born)\b"),
        ("moderate", r"\b(?:just |could )?(?:disappear|vanish|stop existing|cease to exist)\b(?! (?:act|trick|from the (?:map|app|list)|for (?:a|the|an|two|three|\d+) (?:\w+ )?(?:day|week|month|weekend|year|while|bit|hour)s?))"),
        ("moderate", r"\b(?:no|don't see the|what's the|there's no|lost the|see no) point (?:in |of )?(?:living|life|being alive|being here|going on|anything|any of (?:it|this)|it all|existing|me)\b"),
        ("moderate", r"\btired of (?:being (?:alive|here)|living|life|existing|waking up)\b"),
        ("moderate", r"\b(?:wouldn't|won't|would not|don't think i'd|wouldn't even) (?:really )?mind (?:if (?:i|a|something|someone)|dying|being dead|not waking)\b"),
        ("moderate", r"\bif (?:a|some) (?:\w+ ){0,2}(?:hit|killed|ran over) me\b"),
        ("moderate", r"\b(?:be|are|is|would be) (?:fine|better|happier|okay|ok|relieved) without me\b"),
        ("moderate", r"\b(?:life|living|everything|my life|it all) (?:is|feels|seems) (?:so |completely )?(?:pointless|meaningless|not worth (?:it|living)|hopeless)\b"),
        ("moderate", r"\b(?:don't|do not) want to (?:be here|exist|wake up|go on|be alive) any ?more\b|\bdon't want to exist\b"),
        ("moderate", r"\b(?:can't|cannot) (?:do|take|handle|keep doing) (?:this|it|life|any of this) any ?more\b"),
        ("moderate", r"\b(?:burden (?:to|on|for) (?:everyone|my family|them|you|everybody|my \w+))\b"),
        ("moderate", r"\bgive up on (?:life|living|everything|myself)\b|\bgiving up on life\b"),
        ("moderate", r"\bdon't know how (?:much )?(?:long|longer) i can (?:keep going|hold on|do this|last)\b"),
        ("moderate", (r"\b(?:dead|gone|not here|not around)\b", r"\b(?:nobody|no one|who) would (?:even )?(?:notice|care|miss me)\b")),
        # Euphemisms of dying.
        ("high", r"\b(?:go to |fall )?sleep forever\b|\bpermanent(?:ly)? (?:nap|sleep|solution|exit)\b|\bfinal exit\b|\beasy way out\b"),
        ("high", r"\b(?:delete|yeet|erase) myself\b|\blog off (?:forever|for good|permanently)\b|\b(?:go away|disappear|leave) (?:forever|for good|permanently)\b"),
        ("high", r"\bjoin (?:my (?:\w+ ){0,2}(?:mom|mum|dad|grandma|grandpa|nan|brother|sister|husband|wife|son|daughter))\b(?! (?:for|at|in the|on))"),
        ("high", r"\b(?:rope|noose|bridge|ledge|pills?) (?:is|are|looks?|seems?) (?:calling|ready|tempting|waiting)\b"),
        # Active ideation with a misspelled or euphemised object.
        ("high", r"\b(?:want|need|going|plan(?:ning)?|thinking about|think about|thought about|ready) (?:to )?(?:kill myself|suicide|end it all|end my life|die)\b"),
        ("high", (r"\bsuicid\w*", r"\b(?:pills? (?:saved|ready|stocked)|saved up|stockpil\w*|rope|bought|researched|looked up|methods?|how to)\b")),
        ("high", (r"\b(?:thinking|think|thought) (?:about|of) suicide\b", r"\b(?:lately|a lot|every day|all the time|again|constantly|recently)\b")),
        # Farewell acts: a strong finality cue, or a care request plus a finality cue.
        ("high", _FINAL),
        ("high", (_CARE_FOR_ME, r"\b(?:won't|can't|not going to|never) (?:be (?:able|around|here)|see)|\bafter (?:this|today|tonight)|\bfor good\b|\bfault\b|\bdon't be sad\b|\bgoodbye\b|\blove you\b")),
        ("imminent", (_FINAL, _TIME)),
        ("imminent", (_CARE_FOR_ME, r"\bwon't be (?:around|here)\b", _TIME)),
        # Psychosis: voices or beings commanding death or harm to self.
        ("high", r"\b(?:voices?|god|the devil|demons?|they|someone|it) (?:\w+ ){0,3}(?:tell|telling|told|say|says|saying|command\w*|order\w*|want|wants)\w* (?:me|i) (?:to|must|should|have to|need to) (?:die|kill myself|jump|cut|hurt myself|end)\b"),
        ("high", r"\bi (?:must|have to|need to) (?:die|kill myself|sacrifice myself) (?:to|so|for)\b"),
    ),
    "self_harm": (
        ("high", r"\b(?:fresh|new|deep|deeper|open) (?:cuts|burns|wounds|scratches)\b|\bcovered in (?:cuts|scars|burns)\b"),
        ("high", r"\b(?:punch\w*|hit\w*|bang\w*|kick\w*) (?:the )?walls? (?:till|until)\b|\b(?:picked up|grabbed|got out|took out) (?:the|my|a) (?:blade|razor|knife|lighter|scissors)(?: again)?\b"),
        ("high", (r"\bonly (?:way|thing) (?:to|that) (?:feel|helps|makes me feel|calms)\b", r"\b(?:cut|burn|hit|punch|scratch|bleed|blade|razor|hurt)\w*")),
        ("high", (r"\bself harm\w*|\bcut(?:ting)? myself\b|\bburn(?:ed|ing)? myself\b|\bhurt(?:ing)? myself\b", r"\b(?:again|tonight|today|this week|still|keep|every (?:day|night)|relapsed|last night|yesterday|long sleeves|hide|no one (?:asks|sees|knows))\b")),
        ("high", r"\b(?:relapsed|slipped up|broke my streak|started again|did it again|back to (?:cutting|burning|self harm))\b"),
        ("moderate", (r"\b(?:urges?|tempted|craving)\b", r"\b(?:cut|cutting|self harm|blade|razor|hurt myself|burn)\w*")),
        ("moderate", (r"\b(?:clean|free|stopped|quit) (?:for |since )", r"\b(?:urges?|thoughts?|want(?:ing)? to) (?:\w+ ){0,3}(?:back|again|returning|stronger)\b")),
    ),
    "harm_to_others": (
        (
            "high",
            _WILL
            + r" (?:\w+ ){0,3}(?:hurt|kill|stab|shoot|attack|beat up) (?:someone|somebody|people|everyone|everybody|them all)\b",
        ),
        ("high", r"\b(?:thought|thoughts|urges?|images?|picture) (?:of|about) (?:dropping|hurting|shaking|smothering|drowning|stabbing|killing|throwing|hitting|suffocating|strangling) (?:him|her|them|my|the)\b"),
        ("high", (r"\b(?:chip|implant|transmitter|camera|signals?|messages?|voices?)\b", r"\b(?:telling|tells|told|says|ordering|commanding|saying)\b", r"\b(?:need to|have to|must|going to) (?:deal with|get rid of|stop|kill|hurt|punish|silence) (?:her|him|them)\b")),
        # Intent or fear of harming a child or another person: "I'm scared I'll shake her".
        ("high", _WILL + r" (?:\w+ ){0,2}" + _HARM_VERB + r"\w* " + _HER + r"\b"),
        ("high", (r"\b" + _CHILD + r"\b", r"\b(?:shake|shaking|smother|suffocate|throw|drop|hurt|hit)\w* (?:her|him|them|the baby|my baby)\b", r"\b(?:swear|close|scared|afraid|can't stop|going to|about to|want to|might|could|snap)\b")),
        ("high", r"\b(?:he|she|they|you)(?:'s|'re| is| are| will|'ll) (?:going to |gonna )?(?:pay|regret it|be sorry)\b|\bmak(?:e|ing) (?:them|him|her|everyone|you|my \w+|that \w+) (?:all )?(?:pay|sorry|regret)\b"),
        (
            "high",
            r"\b(?:bring|bringing|take|taking|get|got|grab\w*|carry\w*)\s+(?:a|my|my dad's|my \w+'s|his|the|a loaded)\s+"
            + _WEAPON
            + r"\b(?:(?:\s+\w+){0,3}\s+(?:to|into|at)\s+(?:work|school|the office|his|her|their|class|church)\b|\s+in\b)",
        ),
        ("high", (r"\bi know (?:where|which \w+|when|what time) (?:he|she|they) (?:lives?|works?|sleeps?|takes?|leaves?|gets?|finish\w*|goes)\b", r"\b(?:pay|sorry|done talking|get (?:him|her|them)|make|hurt|kill|deserve)\b")),
        ("high", (r"\b(?:voices?|god|the devil|demons?|they) (?:\w+ ){0,3}(?:tell|telling|told|say|says|command\w*|want)\w* me to (?:hurt|kill|attack|stab|punish)\b", r"\b(?:him|her|them|my \w+|everyone|people)\b")),
        ("high", (r"\b(?:voices?|they|someone|people|my \w+) (?:\w+ ){0,3}(?:poisoning|spying on|watching|following|tracking|controlling|after) me\b", r"\b(?:have to|must|need to|going to|will) (?:stop|get|kill|hurt|deal with|take care of|attack) (?:him|her|them)\b")),
        ("high", (r"\b(?:imposter|impostor|replaced|not really (?:my|her|him)|fake|possessed|a demon|a robot)\b", r"\b(?:hurt|kill|stop (?:her|him)|get rid of|attack)\b")),
    ),
    "abuse": (
        ("high", ("@sentence", r"\b" + _CHILD + r"s?\b", r"\b(?:alone|by (?:him|her|them)sel(?:f|ves)|on (?:his|her|their) own|unsupervised|nobody (?:came|looking|cares|home)|no one (?:came|home|looking))\b", r"\b(?:at (?:\d+ ?am|night)|all night|for (?:hours|days)|again|street|road|outside|wandering|crying)\b")),
        ("high", r"\blocked me (?:in|out)\b|\b(?:he|she|they)(?:'ll| will| would|'d) use (?:the|a|his|her) (?:knife|gun|belt|bat)\b"),
        ("high", r"\b(?:showed|shows|show|showing) (?:her|him|me|them) (?:his|her) (?:private parts|privates|genitals|penis)\b|\bprivate parts\b"),
        ("high", r"\b(?:throws|threw|throwing) (?:things|stuff|plates|\w+) at me\b|\b(?:cut|stabbed|burned|burns|burnt|scalded) me\b(?! (?:off|some slack|a deal))"),
        ("high", r"\b(?:he|she|they)(?:'ll| will| would|'d| is going to|'s going to) (?:\w+ ){0,4}kill me\b"),
        ("high", r"\b(?:forces?|forced|makes|made|pressur\w+) me (?:to )?(?:have sex|do (?:sexual )?things|touch|sleep with)\b|\braped? me\b|\b(?:was|got|been) raped\b"),
        ("high", r"\b(?:comes?|came|gets?) (?:into|in) (?:my|our) (?:room|bed)\b|\b(?:touches|touched|touching) me\b|\bdoes things (?:to me )?(?:i|that i) (?:don't|didn't) want\b"),
        ("high", r"\b(?:told|tells) me (?:it's|to keep it) (?:our|a) secret\b|\bdon't tell (?:my|anyone)\b.{0,40}\b(?:he|she)\b"),
        (
            "high",
            r"\b(?:"
            + _CHILD
            + r")s? (?:\w+ ){0,4}(?:(?:been )?left (?:alone|on their own|by themselves)|haven't eaten|not been fed|no food|locked (?:in|out)|screaming for help)\b",
        ),
        ("high", r"\b(?:hits|beats|kicks|burns|chokes|starves|locks|whips|slaps|punches|hitting|beating) (?:the|his|her|their|my|our) (?:\w+ )?(?:kids?|children|son|daughter|baby|toddler|little one|sister|brother|siblings?)\b"),
        ("high", (r"\b" + _CHILD + r"s?\b", r"\b(?:bruises|burns|welts|black eye|broken arm|injuries)\b|\blocks? (?:him|her|them) (?:on|in|out)\b|\bwith (?:a|the) (?:belt|stick|cane|hanger|cord)\b")),
        ("high", r"\b(?:chokes?|choked|strangle[sd]?|hits?|beats?|kicked|punched|slapped|shoved|threw) me\b(?! (?:out|a |an |the |off|up))|\bthreaten\w* to kill me\b|\bwon't let me (?:leave|eat|see|go)\b"),
    ),
    "medical_emergency": (
        ("high", (r"\b(?:haven't|not|didn't|no) (?:had|eaten|drunk|eat|drink)? ?(?:\w+ ){0,3}(?:food|water|anything) (?:in|for) (?:\d+|two|three|four|five|several) days\b", r"\b(?:barely (?:stand|walk|move)|can't stand|dizzy|shaking|heart|faint\w*|black\w* out)\b")),
        # An overdose already taken, subject dropped or not.
        ("imminent", r"(?:^|[.!?,;] |\bi(?:'ve| have)? (?:just |already )?)(?:just |already )?(?:swallowed|took|taken|had|ate|eaten|downed|necked|drank|chugged|overdosed on|od'd on) (?:\w+ ){0,3}(?:whole|all|entire|every|everything|\d{2,}|handful|bottle|packet|pack|box|strip|lot) (?:\w+ ){0,4}(?:pills|tablets|meds|medicine|medication|paracetamol|tylenol|ibuprofen|insulin|sleeping|cabinet|cupboard|box|packet|bottle|antidepressants|xanax|valium|benzos|oxy\w*|codeine|aspirin|advil|lithium|seroquel|sertraline|prozac|zoloft|melatonin|benadryl|painkillers|diazepam)\b|\bi (?:just |already )?overdosed\b"),
        ("high", (r"\b(?:faint(?:ed|ing)?|pass(?:ed|ing) out|black(?:ed|ing)? out|collaps\w*|heart (?:\w+ ){0,3}(?:weird|racing|skipping|flutter\w*|irregular|pounding|stopping)|chest pain)\b", _ED)),
        ("high", (r"\b(?:blood|bleeding|bloody)\b", r"\b(?:throw(?:ing)? up|threw up|vomit\w*|purg\w*)\b")),
        ("high", r"\b(?:purg\w*|throw(?:ing)? up|make myself (?:sick|throw up)) (?:\d+|several|many|multiple|four|five|six|like \d+) times (?:a|per|every) day\b|\bpurge (?:\d+ or \d+|\d+) times\b"),
    ),
}
# fmt: on

# Frames that make the topic present but nobody in the chat at risk now: each is
# (patterns that must all match, a pattern that blocks the frame); a frame caps the level
# at "low" (see `carellm.safety.concepts`).
_ME_NOW = r"\bi (?:really |still |just |also )?(?:want|plan|am going|'m going|need|am about|'m about) to (?:die|kill myself|end (?:it|my life))\b|\bi'm (?:going to|about to) do it\b|\bi'm suicidal\b"
_NOW = r"\b(?:again|lately|these days|urges?|relaps\w*|tonight|right now|back|still)\b|" + _ME_NOW
FRAMES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "professional": (
        (
            r"\b(?:what|which) (?:percentage|percent|proportion|share)\b|\bhow (?:many|common|often|likely) (?:people|men|women|teens|patients|survivors)\b|\bwhy do (?:people|men|women|teens|so many)\b|\bwarning signs?\b|\bsigns of\b|\brisk factors?\b|\bdifference between\b|\bfor (?:assessment|research|my (?:class|thesis|essay|course|training|exam|paper))\b|\bhow (?:should|can|do) (?:i|we) (?:ask|talk to|support|help|approach|respond|screen|assess)\b|\b(?:what|how) (?:should|do|can) (?:i|we|parents|teachers) (?:say|do|look)\b.{0,30}\b(?:student|client|patient|teen|child|kid|friend)s?\b|\bstatistics\b|\bprevalence\b|\bguidelines?\b|\bprotocol\b|\bmyth\b",
        ),
        _ME_NOW,
    ),
    "third_person_safe": (
        (
            r"\b(?:my|a|our) (?:friend|sister|brother|cousin|student|client|patient|colleague|son|daughter|roommate|partner)\b|\b(?:he|she|they) (?:told|said|was|were|had)\b",
            r"\b(?:now|already) (?:seeing|in|getting|has|have)\b|\b(?:seeing|sees) (?:a|an|her|his) (?:therapist|psychiatrist|counsel\w*|doctor)\b|\bparents know\b|\b(?:is|are) safe now\b|\bgot help\b|\bgetting help\b|\bdoing (?:much )?better\b|\bhow (?:can|do) i (?:support|help|be)\b",
        ),
        _ME_NOW,
    ),
    "recovered": (
        (
            r"\b(?:years? ago|used to|in (?:high|middle) school|back in|when i was (?:\w+ ){0,2}(?:younger|a teen|a kid|\d+)|in (?:\d{4}|college|university)|last year)\b",
            r"\bhaven't (?:done it|self harmed|cut|hurt myself|had)\b|\b(?:years?|months?) (?:clean|free|since)\b|\bsince then\b|\bproud\b|\brecovered\b|\brecovery\b|\bdoing (?:much |so much )?better\b|\bgrateful\b|\bglad (?:i'm|i am) (?:still )?(?:here|alive)\b|\btoday i\b|\bnow i\b|\bi'm (?:ok|okay|fine|good|happy) now\b|\b(?:happy|thriving|stable|healthy) now\b|\bnow\b[^.!?]{0,30}\b(?:happy|thriving|stable|married|healthy)\b|\bcame a long way\b|\bhow far i've come\b",
        ),
        _NOW,
    ),
    "game": (
        (
            r"\b(?:ranked|tournament|raid|lobby|boss fight|respawn\w*|minecraft|fortnite|valorant|overwatch|league of legends|in-game|in game|pvp|the other team|opponents?|level \d+|checkpoint)\b",
        ),
        _ME_NOW,
    ),
    "fiction": (
        (
            r"\b(?:(?:song|lyric|track|album|poem|quote|line|verse) (?:that |which )?(?:goes|says|called|titled)|in (?:my|the|this|a|our) (?:novel|story|book|script|screenplay|game|movie|film|show|series|episode|song|poem|fanfic|campaign|level|play|comic|manga|anime|chapter)|my (?:character|oc|protagonist)|the (?:character|protagonist|villain|narrator)|lyrics?|the song (?:goes|says)|in the news|news (?:report|article|story)|reported|article|headline|according to|police said|study (?:found|shows)|documentary|podcast)\b",
        ),
        _ME_NOW,
    ),
    "joke": (
        (
            r"\b(?:jk|just kidding|only kidding|kidding)\b|\bif (?:i have to|i hear|i see|they|he|she|my \w+|this|the \w+) (?:\w+ ){0,5}(?:one more|again|another)\b.{0,60}(?:\blol\b|\bhaha\w*|\blmao\b|\U0001f602|\U0001f923)|\bif (?:\w+ ){0,4}(?:lose|loses|lost|fail|fails|win|wins|cancel\w*|sells? out|spoil\w*)\b.{0,40}\bliterally\b",
        ),
        r"\bnot (?:kidding|joking)\b|\bi'm serious\b|\bseriously\b",
    ),
    "safe_injury": (
        (
            r"\b(?:cooking|chopping|shaving|kitchen|accident\w*|by accident|tripped|fell off|slipped)\b",
            r"\b(?:(?:i'm|it's|all) (?:fine|ok|okay|good) now|band-?aid|stopped bleeding|no big deal)\b",
        ),
        r"\bon purpose\b|\bmyself\b",
    ),
}
