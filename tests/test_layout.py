"""The package's shape: a torch-free vocabulary, one definition per fact, a code map that
matches the tree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(120)


def _modules_loaded_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=100,
    )  # fmt: skip
    return set(out.stdout.split())


def test_vocabulary_imports_without_torch():
    loaded = _modules_loaded_by(
        "from carellm import Reply, Turn, TextDelta, AudioChunk, Assessment, Final, "
        "EmotionReport, SafetyAssessment, InputError, RemoteError, ReportError\n"
        "import carellm.conversation, carellm.safety, carellm.emotion, carellm.media"
    )
    assert "carellm.reply" in loaded and "carellm.turn" in loaded  # the import really ran
    assert not {"torch", "transformers"} & loaded


def test_remote_backend_does_not_import_the_server():
    loaded = _modules_loaded_by("import carellm.remote")
    assert "carellm.remote" in loaded
    assert not any(m.startswith("carellm.serve") for m in loaded)
    assert "torch" not in loaded


def test_top_level_stays_small_and_code_map_matches_the_tree():
    package = ROOT / "carellm"
    modules = sorted(p.name for p in package.glob("*.py"))
    folders = sorted(
        p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )
    assert len(modules) <= 20, modules
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Code map", 1)[1].split("```", 2)[1]
    listed = set(re.findall(r"^  ([a-z0-9_]+(?:\.py|/))", block, flags=re.M))
    on_disk = {m for m in modules if m != "__main__.py"} | {f + "/" for f in folders}
    on_disk.add("resources/")
    assert listed == on_disk, listed ^ on_disk
    # each subpackage's files are named in its line of the map
    for folder in folders:
        line = next(x for x in block.splitlines() if x.strip().startswith(folder + "/"))
        for module in (package / folder).glob("*.py"):
            if module.name not in ("__init__.py",) and not module.name.startswith("_"):
                assert module.stem in line, (folder, module.name)


def test_no_flat_prefix_families_left():
    names = [p.stem for p in (ROOT / "carellm").glob("*.py")]
    prefixes = {n.split("_")[0] for n in names if "_" in n.strip("_")}
    families = {p for p in prefixes if sum(n.startswith(p + "_") for n in names) >= 1}
    assert not families, families
