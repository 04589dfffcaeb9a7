"""`carellm data`: convert a dataset to CareLLM chat records, and summarise a records file."""

from __future__ import annotations

import argparse
import logging


def register(subparsers: argparse._SubParsersAction) -> None:
    from carellm.data import FORMATS

    parser = subparsers.add_parser("data", help="convert datasets and summarise record files")
    commands = parser.add_subparsers(dest="data_command", required=True)

    convert = commands.add_parser("convert", help="convert a dataset to records JSONL")
    convert.add_argument("source", help="dataset file or folder")
    convert.add_argument("--format", required=True, choices=FORMATS, help="source format")
    convert.add_argument("--out", required=True, help="records .jsonl file to write")
    convert.add_argument("--progress", action="store_true", help="show a progress bar")
    convert.set_defaults(func=run_convert)

    summary = commands.add_parser("stats", help="print statistics of a records JSONL file")
    summary.add_argument("file", help="records .jsonl file")
    summary.set_defaults(func=run_stats)


def _not_a_warning(record: logging.LogRecord) -> bool:
    return record.levelno != logging.WARNING


def run_convert(args: argparse.Namespace) -> int:
    from carellm.data import load, write_records

    stream = load(args.source, format=args.format, progress=args.progress)
    # The reader logs its skip summary as a warning for library users; here the summary
    # is the command's output, printed once below (debug lines per skip stay with -v).
    records_logger = logging.getLogger("carellm.data.records")
    records_logger.addFilter(_not_a_warning)
    try:
        written = write_records(stream, args.out)
    finally:
        records_logger.removeFilter(_not_a_warning)
    print(f"wrote {written} records to {args.out}")
    print(stream.skipped.summary())
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from carellm.data import format_stats, stats

    print(format_stats(stats(args.file)))
    return 0
