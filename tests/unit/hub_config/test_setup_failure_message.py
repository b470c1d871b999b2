"""What a researcher reads when their session's set-up failed: every step named in Japanese and English."""
from __future__ import annotations

import pytest

from hub_config.spawner import SETUP_STEP_WORDS, SetupStep, setup_failure_message


def test_every_setup_step_has_words_in_both_languages():
    assert set(SETUP_STEP_WORDS) == set(SetupStep)


@pytest.mark.parametrize("step", list(SetupStep))
def test_the_message_names_the_failed_step_in_japanese_then_english(step):
    ja, en = SETUP_STEP_WORDS[step]
    first, second = setup_failure_message(step).split("\n")
    assert ja in first and "セッション" in first and "施設の担当者" in first
    assert f"({en} failed)" in second and "facility staff" in second
