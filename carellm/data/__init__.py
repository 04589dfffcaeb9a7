"""Dataset readers: GoEmotions, EmpatheticDialogues, SoulChat-style corpora and MELD,
all converted to one chat-record format (see `carellm.data.records`)."""

from carellm.data.empathetic_dialogues import ED32_LABELS, read_empathetic_dialogues
from carellm.data.goemotions import read_goemotions
from carellm.data.meld import MELD7_LABELS, read_meld
from carellm.data.records import (
    ChatRecord,
    RecordStream,
    Skip,
    SkipLog,
    read_records,
    write_records,
)
from carellm.data.soulchat import parse_transcript, read_soulchat
from carellm.data.sources import FORMATS, load
from carellm.data.stats import DatasetStats, Summary, format_stats, stats

__all__ = [
    "ED32_LABELS",
    "FORMATS",
    "MELD7_LABELS",
    "ChatRecord",
    "DatasetStats",
    "RecordStream",
    "Skip",
    "SkipLog",
    "Summary",
    "format_stats",
    "load",
    "parse_transcript",
    "read_empathetic_dialogues",
    "read_goemotions",
    "read_meld",
    "read_records",
    "read_soulchat",
    "stats",
    "write_records",
]
