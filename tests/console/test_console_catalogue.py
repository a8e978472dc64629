"""The console's Chinese catalogue: every message the code, the templates and
the rule files use has a translation, with the same placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[2]
CONSOLE = REPO / "riskwatch" / "console"
PO = CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
PYBABEL = Path(sys.executable).with_name("pybabel")


def extracted(tmp_path: Path):
    """The messages as babel.cfg's own command extracts them now."""
    target = tmp_path / "messages.pot"
    subprocess.run([str(PYBABEL), "extract", "-F", str(CONSOLE / "babel.cfg"), "-k", "N_", "-k", "ngettext:1,2",
                    "--no-wrap", "-o", str(target), "."], cwd=REPO, check=True, capture_output=True, timeout=120)
    with target.open("rb") as handle:
        return read_po(handle)


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\([a-z_]+\)[sd]", text))


def test_every_message_has_a_chinese_translation_with_the_same_placeholders(tmp_path):
    with PO.open("rb") as handle:
        chinese = read_po(handle, locale="zh_CN")
    missing, fuzzy, mismatched = [], [], []
    for message in extracted(tmp_path):
        if not message.id:
            continue
        found = chinese.get(message.id)
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [] if found is None else ([found.string] if isinstance(found.string, str) else list(found.string))
        if found is None or not all(strings):
            missing.append(ids[0])
        elif found.fuzzy:
            fuzzy.append(ids[0])
        elif any(placeholders(text) != placeholders(ids[0]) for text in strings):
            mismatched.append(ids[0])
    assert missing == [], f"not in messages.po (extract, then pybabel update, then translate): {missing}"
    assert fuzzy == [], f"fuzzy (a guess by pybabel update; check and clear the flag): {fuzzy}"
    assert mismatched == [], f"the translation's %(name)s placeholders differ: {mismatched}"


def test_every_kind_of_action_in_an_audit_trail_has_a_name_in_both_languages():
    """An audit trail shows each action by its name (words.ACTION_NAMES): a
    kind without one was shown to a Chinese user as its code ("assign")."""
    from riskwatch.console import words
    from riskwatch.contracts import ACTION_KINDS

    with PO.open("rb") as handle:
        chinese = read_po(handle, locale="zh_CN")
    unnamed = [kind for kind in ACTION_KINDS if kind not in words.ACTION_NAMES]
    assert unnamed == [], f"action kinds without a name in riskwatch/console/words.py ACTION_NAMES: {unnamed}"
    untranslated = [name for name in words.ACTION_NAMES.values()
                    if chinese.get(name) is None or not chinese.get(name).string]
    assert untranslated == [], f"action names without a Chinese translation: {untranslated}"
