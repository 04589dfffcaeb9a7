"""Text normalisation before crisis detection: one spelling for many ways of writing.

Steps, in order (`normalise`):
1. NFKC (full-width letters, digits and punctuation become half-width), lower case,
   curly quotes straightened, runs of white space collapsed.
2. Traditional Chinese → simplified, one character at a time, with a small table written
   for the characters that occur in crisis language (not a general converter), then
   common Cantonese words → Mandarin ("唔" → "不", "係" → "是", "攰" → "累").
3. A space between a CJK character and a Latin letter ("我想kms" → "我想 kms"), so the
   English patterns see whole words in mixed zh/en text.
4. Misspellings, pinyin and internet euphemisms → the plain word: "sucide" → "suicide",
   "kms"/"kys" → "kill myself", "unalive" → "kill", "sewerslide" → "suicide",
   "zs"/"zisha"/"自沙"/"紫砂" → "自杀", "qs" → "轻生".
The result is only matched, never shown, so the mapping may be lossy.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Traditional → simplified for characters found in messages about distress, danger,
# family, bodies and time. Written by hand; pairs are (traditional, simplified).
_TRAD = (
    "殺杀 覺觉 負负 擔担 撐撑 還还 這这 們们 會会 沒没 點点 見见 對对 說说 話话 傷伤 藥药 樓楼 結结 "
    "東东 給给 讓让 聽听 聲声 經经 遺遗 書书 準准 備备 裡里 裏里 種种 時时 為为 爲为 麼么 麽么 個个 "
    "來来 過过 後后 幾几 開开 關关 與与 從从 無无 難难 邊边 錢钱 媽妈 嗎吗 愛爱 謝谢 別别 燒烧 顆颗 "
    "醫医 劑剂 車车 軌轨 橋桥 親亲 氣气 壓压 罵骂 強强 姦奸 頭头 腦脑 幫帮 誰谁 應应 該该 處处 飯饭 "
    "體体 減减 餓饿 暈晕 嘔呕 門门 問问 題题 學学 課课 實实 現现 長长 間间 陽阳 臺台 電电 槍枪 殘残 "
    "斷断 絕绝 極极 輕轻 鬆松 盡尽 夠够 夢梦 將将 歲岁 總总 錯错 終终 於于 脫脱 狀状 態态 隻只 貓猫 "
    "餵喂 顧顾 囑嘱 寫写 訊讯 發发 條条 戶户 墜坠 嚇吓 讀读 認认 識识 記记 憶忆 價价 買买 賣卖 藏藏 "
    "麼么 嗎吗 歡欢 樂乐 聯联 繫系 員员 導导 師师 媽妈 爺爷 孫孙 兒儿 婦妇 變变 壞坏 瘋疯 癮瘾 "
    "戲戏 劇剧 遊游 戰战 場场 聞闻 報报 紙纸 據据 級级 歷历 憂忧 鬱郁 焦焦 慮虑 緒绪 療疗 診诊 斷断 "
    "痛痛 癢痒 腫肿 傷伤 疤疤 血血 瘀瘀 綁绑 繩绳 鎖锁 廁厕 窗窗 門门 鐵铁 軌轨 煤煤 炭炭 農农 "
    "滅灭 毀毁 報报 復复 仇仇 恨恨 氣气 動动 手手 揍揍 擊击 劃划 勁劲 聽听 見见 幻幻 覺觉 鬼鬼 "
    "魔魔 惡恶 靈灵 魂魂 號号 碼码 訴诉 獨独 麗丽 離离 開开 掛挂 線线 網网 頁页 帳帐 號号 碼码 "
    "隨随 便便 許许 該该 願愿 聖圣 誕诞 節节 紀纪 業业 辦办 務务 禮礼 鐘钟 夜夜 晚晚 舊旧 "
    "窮穷 債债 貸贷 賭赌 輸输 贏赢 錢钱 帶带 腕腕 割割 刀刀 剪剪 頸颈 脖脖 吊吊 跳跳 淹淹 溺溺 "
    "悶闷 煩烦 累累 攰累 孤孤 單单 嗚呜 嘆叹 謊谎 說说 錄录 誌志 證证 據据 續续 繼继 歸归 屬属 "
    "飲饮 著着 計计 樣样 請请 語语 講讲 當当 機机 嚴严 專专 習习 試试 彈弹 厭厌 臉脸 淚泪 戀恋 鄰邻 煙烟 熱热 溫温 濕湿 乾干 麵面 雞鸡 魚鱼 鳥鸟 馬马 層层 牆墙 廚厨 臥卧 櫃柜 嚨咙 脈脉 畫画 決决 託托 寵宠 養养 鑰钥 賬账 喝喝 灌灌 吞吞 嚥咽 嘔呕 吐吐 瘦瘦 胖胖 卡卡 路路 稱称 磅磅 輩辈 較较 嗎吗 嘛嘛 啊啊"
)
# Cantonese words → Mandarin (applied after the character table).
_CANTONESE = (
    ("唔该", "谢谢"), ("唔", "不"), ("係咪", "是不是"), ("关係", "关系"), ("係", "是"), ("咗", "了"),
    ("嘅", "的"), ("佢哋", "他们"), ("佢", "他"), ("冇", "没有"), ("喺", "在"), ("啲", "些"),
    ("嘢", "东西"), ("諗", "想"), ("落去", "下去"), ("畀", "给"), ("俾", "给"),
    ("睇", "看"), ("揾", "找"), ("瞓", "睡"), ("咁", "这么"), ("嚟", "来"), ("乜嘢", "什么"),
    ("点解", "为什么"), ("仲", "还"), ("点样", "怎样"), ("咩", "什么"), ("边个", "谁"), ("攞", "拿"), ("食", "吃"), ("我哋", "我们"), ("你哋", "你们"),
)  # fmt: skip
# Whole-word misspellings, abbreviations and euphemisms (Latin script) → the plain words.
_WORDS = {
    "sucide": "suicide", "suicde": "suicide", "suiside": "suicide", "suicid": "suicide",
    "sucidal": "suicidal", "suicidle": "suicidal", "suisidal": "suicidal", "sewerslide": "suicide",
    "sewer slide": "suicide", "su1c1de": "suicide", "s*icide": "suicide", "suic1de": "suicide",
    "kms": "kill myself", "kys": "kill yourself", "unalive": "kill", "unaliving": "killing",
    "unalived": "killed", "kil": "kill", "kill my self": "kill myself", "my self": "myself",
    "selfharm": "self harm", "self-harm": "self harm", "sh": "self harm", "od": "overdose",
    "od'd": "overdosed", "od'ed": "overdosed", "oded": "overdosed", "ctb": "kill myself",
    "die'd": "died", "wanna": "want to", "gonna": "going to", "tryna": "trying to",
    "im": "i'm", "ive": "i've", "dont": "don't", "cant": "can't", "wont": "won't",
    "didnt": "didn't", "doesnt": "doesn't", "isnt": "isn't", "idk": "i don't know",
    "anymoer": "anymore", "anymore": "anymore", "alot": "a lot", "rn": "right now",
    "tonite": "tonight", "2nite": "tonight", "u": "you", "ur": "your", "pils": "pills",
    "myslef": "myself", "wnat": "want", "watn": "want", "dei": "die", "diie": "die", "lfie": "life", "lief": "life", "anymroe": "anymore", "mysef": "myself", "mysefl": "myself", "myselff": "myself",
    "thinkin": "thinking", "bout": "about", "abt": "about", "evry": "every", "everyday": "every day",
    "wana": "want to", "wanan": "want to", "dyin": "dying", "tho": "though", "bc": "because",
    "zs": "自杀", "zisha": "自杀", "zi sha": "自杀", "qs": "轻生", "qingsheng": "轻生",
}  # fmt: skip
# Chinese homophone spellings used to slip past filters.
_ZH_WORDS = (
    ("自沙", "自杀"),
    ("紫砂", "自杀"),
    ("自鲨", "自杀"),
    ("自刹", "自杀"),
    ("自S", "自杀"),
)
_SPACE_CJK_LATIN = re.compile(r"(?<=[\u3400-\u9fff])(?=[a-z0-9])|(?<=[a-z0-9])(?=[\u3400-\u9fff])")


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[dict[int, str], re.Pattern]:
    trad = {}
    for pair in _TRAD.split():
        if len(pair) == 2 and pair[0] != pair[1]:
            trad[ord(pair[0])] = pair[1]
    keys = sorted(_WORDS, key=len, reverse=True)
    words = re.compile(
        r"(?<![a-z0-9'])(?:" + "|".join(re.escape(k) for k in keys) + r")(?![a-z0-9'*-])"
    )
    return trad, words


def normalise(text: str) -> str:
    """The text as the crisis patterns read it (see the module docstring)."""
    trad, words = _tables()
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").translate(trad)
    if any("\u3400" <= ch <= "\u9fff" for ch in text):
        for old, new in _CANTONESE + _ZH_WORDS:
            text = text.replace(old, new)
        text = _SPACE_CJK_LATIN.sub(" ", text)
    text = words.sub(lambda m: _WORDS[m.group()], text)
    if "si" in text or "sha" in text:  # pinyin inside Chinese: "好想si啊", "自sha"
        text = re.sub(r"(?<=[\u4e00-\u9fff]) ?si(?: |$)(?=[\u4e00-\u9fff]|$)", "死", text)
        text = re.sub(r"自 ?sha\b", "自杀", text)
    return re.sub(r"\s+", " ", text)
