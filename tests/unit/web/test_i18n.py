from __future__ import annotations

import re
from pathlib import Path

import pytest

import disclosure_review.workflow
from review_service import i18n

TEMPLATES = Path(i18n.__file__).resolve().parent / "templates"


def test_every_message_has_every_language():
    for key, texts in i18n.MESSAGES.items():
        assert set(texts) == set(i18n.LANGUAGES), key
        assert all(texts[lang].strip() for lang in i18n.LANGUAGES), key


def test_every_key_used_in_templates_exists():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\(["'](\w+)["']\s*[,)]""", template.read_text()))
    assert used and used - set(i18n.MESSAGES) == set()
    # keys built from enum values
    from disclosure_review.workflow.enums import Decision, OutputKind, ReleaseStatus

    built = {f"status_{s.value}" for s in ReleaseStatus} | {f"decision_{d.value}" for d in Decision}
    built |= {f"kind_{k.value}" for k in OutputKind} | {f"verdict_{v}" for v in ("pass", "fail", "review")}
    assert built - set(i18n.MESSAGES) == set()


@pytest.mark.parametrize(
    "query,cookie,header,expected",
    [
        (None, None, None, "ja"),
        ("en", "ja", "ja", "en"),
        (None, "en", "ja", "en"),
        ("fr", None, "en-US,en;q=0.9", "en"),
        (None, None, "fr, en;q=0.3, ja;q=0.8", "ja"),
        (None, None, "de", "ja"),
    ],
)
def test_language_negotiation(query, cookie, header, expected):
    assert i18n.negotiate(query, cookie, header) == expected


def test_every_workflow_refusal_key_is_translated():
    import string

    workflow = Path(disclosure_review.workflow.__file__).resolve().parent
    keys = set()
    for source in workflow.glob("*.py"):
        keys |= set(re.findall(r'key="(\w+)"', source.read_text()))
    assert keys and {f"err_{k}" for k in keys} - set(i18n.MESSAGES) == set()
    for key in keys:  # both languages use the same placeholders
        fields = [{f for _, f, _, _ in string.Formatter().parse(i18n.MESSAGES[f"err_{key}"][lang]) if f} for lang in i18n.LANGUAGES]
        assert fields[0] == fields[1], key


def test_protection_choices_are_translated():
    """Keys the protection form and history build from the methods a reviewer can choose."""
    from disclosure_review.sdc.enums import SecondaryMethod
    from disclosure_review.workflow.protection import METHODS

    built = {f"method_{m}" for m in METHODS} | {f"secondary_{m.value}" for m in SecondaryMethod}
    assert built - set(i18n.MESSAGES) == set()


def test_protection_facts_are_translated():
    """Keys the protection section builds from the sdc facts: the method, its note, each interval's status."""
    from disclosure_review.sdc.enums import ProtectionMethod
    from disclosure_review.sdc.protection import IntervalStatus

    built = {f"method_{m.value}" for m in ProtectionMethod} | {f"interval_{s.value}" for s in IntervalStatus}
    built |= {"protection_note_round", "protection_note_delete_records"}
    assert built - set(i18n.MESSAGES) == set()
    template = (TEMPLATES / "_protection.html").read_text()
    assert "<strong>{{ protection.method }}" not in template and "<td>{{ c.status }}" not in template  # never raw
