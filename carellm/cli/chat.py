"""`carellm chat`: a terminal counseling REPL.

Plain lines are text turns. ``/audio FILE``, ``/image FILE`` and ``/video FILE``
attach media to the next turn (decoded on the spot: a file that cannot be used is refused
with one line and the conversation goes on); ``/reset``, ``/export DIR``, ``/help`` and ``/quit``
do what they say. Spoken replies are saved as WAVs in ``--save-audio DIR`` (only when
asked: nothing is written otherwise) or played with an audio player if one exists.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from carellm.cli._model_args import add_model_arguments, load_engine, reply_tokens
from carellm.errors import CareLLMError

BANNER = (
    "CareLLM is a research tool, not a therapist. If you are in danger, call your local "
    "emergency number (US/Canada 988, China 12356). Nothing is stored unless you /export."
)
HELP = "commands: /audio FILE  /image FILE  /video FILE  /reset  /export DIR  /help  /quit"
_PLAYERS = (("aplay", "-q"), ("paplay",), ("afplay",), ("play", "-q"))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "chat",
        help="counseling chat in the terminal",
        description="Counseling chat in the terminal. In the chat, /audio FILE, /image FILE "
        "and /video FILE attach media to your next message; /reset, /export DIR, /help, /quit.",
        epilog="Example media to try: /audio assets/voice_stressed_en.flac, "
        "/audio assets/voice_calm_zh.mp3, /image assets/photo_tired.jpg, "
        "/video assets/video_stressed_en.mp4 (see assets/README.md).",
    )
    add_model_arguments(p)
    p.add_argument("--persona", default="counselor", help="counselor, listener or cbt")
    p.add_argument("--voice", default="Chelsie", help="Chelsie or Ethan")
    p.add_argument("--language", choices=("zh", "en"), default=None,
                   help="reply language (default: follow the user)")  # fmt: skip
    p.add_argument(
        "--no-report", dest="report", action="store_false", help="skip the emotion report"
    )
    p.add_argument("--save-audio", metavar="DIR", help="save each spoken reply as a WAV in DIR")
    p.add_argument("--play", action="store_true", help="play spoken replies with an audio player")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (reproducible replies)")
    p.set_defaults(func=run)


def _player() -> tuple[str, ...] | None:
    for cmd in _PLAYERS:
        if shutil.which(cmd[0]):
            return cmd
    return None


def _attachment_error(kind: str, path: str, limits) -> str | None:
    """Decode ``path`` with carellm.media's loader for ``kind`` ("audio", "image",
    "video") under the session's limits; the one-line reason it cannot be used, or None."""
    from carellm import media

    loader = {"audio": media.load_audio, "image": media.load_image, "video": media.load_video}
    try:
        loader[kind](path, limits=limits)
    except CareLLMError as e:
        return str(e)
    return None


def _attach(kind: str, path: str, pending: dict, limits) -> None:
    """Attach a file to the next message, or drop it with a one-line error."""
    error = _attachment_error(kind, path, limits)
    if error is not None:
        kept = f"; {kind} {pending[kind]} stays attached" if kind in pending else ""
        print(f"[error] {error}\n[{kind} not attached{kept}; your conversation is unchanged]")
        return
    pending[kind] = path
    print(f"[{kind} {path} will go with your next message; press Enter to send it alone]")


def _handle_command(line: str, pending: dict, session, limits) -> bool:
    """Apply a /command; returns False to quit."""
    cmd, _, arg = line.partition(" ")
    arg = arg.strip()
    if cmd in ("/quit", "/exit"):
        return False
    if cmd in ("/audio", "/image", "/video"):
        if not arg:
            print(f"usage: {cmd} FILE")
        else:
            _attach(cmd[1:], arg, pending, limits)
    elif cmd == "/reset":
        session.reset()
        pending.clear()
        print("[conversation cleared]")
    elif cmd == "/export":
        print(f"[exported to {session.export(arg or 'carellm-session')}]")
    else:
        print(HELP)
    return True


def _show_reply(reply, index: int, args, player) -> None:
    from carellm.media.audio import write_wav

    if reply.transcript:
        print(f"  [you said: {reply.transcript}]")
    if reply.emotion is not None:
        e = reply.emotion
        print(f"  [{e.emoji} {e.label_en}/{e.label_zh} {e.primary.score:.2f} · valence {e.valence:+.2f} "
              f"· arousal {e.arousal:.2f} · risk {e.risk} · {e.source}]")  # fmt: skip
    if reply.safety is not None and reply.safety.level not in ("none", "low"):
        print(
            f"  [safety: {reply.safety.level} ({', '.join(reply.safety.categories) or 'model report'})]"
        )
    if reply.audio is None or not reply.audio.size:
        return
    seconds = reply.audio.size / reply.sample_rate
    if args.save_audio:
        path = Path(args.save_audio) / f"reply_{index:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, reply.audio, reply.sample_rate)
        print(f"  [speech {seconds:.1f} s saved to {path}]")
    if args.play and player:
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            write_wav(Path(f.name), reply.audio, reply.sample_rate)
            subprocess.run([*player, f.name], check=False)


def _turn(session, text: str, pending: dict, args, index: int, player) -> bool:
    from carellm.reply import Final, TextDelta
    from carellm.turn import Turn

    turn = Turn(
        text=text or None,
        audio=pending.get("audio"),
        image=pending.get("image"),
        video=pending.get("video"),
    )
    try:
        print("carellm> ", end="", flush=True)
        for event in session.stream(turn, report=args.report):
            if isinstance(event, TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, Final):
                print()
                _show_reply(event.reply, index, args, player)
    except CareLLMError as e:
        print(f"\n[error] {e}\n[nothing was added to the conversation; try again]")
        # An attachment that broke the turn (e.g. deleted since /audio) must not break
        # every later one: drop it; other attachments stay for the retry.
        if pending.pop(getattr(e, "field", None), None) is not None:
            print(f"[{e.field} dropped; attach it again if you still want to send it]")
        return False
    pending.clear()
    return True


def run(args) -> int:
    from carellm.media import MediaLimits

    engine = load_engine(args)
    session = engine.session(
        persona=args.persona,
        voice=args.voice,
        language=args.language,
        seed=args.seed,
        max_new_tokens=reply_tokens(args, engine),
    )
    print(BANNER)
    if engine.info.tiny:
        print("WARNING: TINY RANDOM MODEL — replies are random tokens, for plumbing checks only.")
    print(f"model: {engine.info.model} on {engine.info.device} · persona {args.persona} · {HELP}")
    player = _player() if args.play else None
    if args.play and not player:
        print("[no audio player found (aplay/paplay/afplay/play); use --save-audio DIR]")
    limits = getattr(engine, "media_limits", None) or MediaLimits()  # remote: the defaults
    pending: dict = {}
    index = 0
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print()
            return 0
        line = line.strip()
        if line.startswith("/"):
            if not _handle_command(line, pending, session, limits):
                return 0
            continue
        if not line and not pending:
            continue
        index += 1
        _turn(session, line, pending, args, index, player)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(None))
