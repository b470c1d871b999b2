"""Language negotiation and the strings every Onsite web page shows alike (Japanese first).

The language comes from `?lang=` (remembered in the `lang` cookie), else the
cookie, else Accept-Language, else Japanese.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"

Messages = Mapping[str, Mapping[str, str]]

# The page frame and the HTTP errors, the same in every service.
SHARED_MESSAGES: dict[str, dict[str, str]] = {
    "skip": {"ja": "本文へ移動", "en": "Skip to content"},
    "signed_in_as": {"ja": "ログイン中", "en": "Signed in as"},
    "language": {"ja": "言語", "en": "Language"},
    "error_heading": {"ja": "エラー", "en": "Error"},
    "error_forbidden": {"ja": "この操作は許可されていません", "en": "This is not allowed"},
    "error_not_found": {"ja": "見つかりません", "en": "Not found"},
    "error_bad_request": {"ja": "入力に問題があります", "en": "There is a problem with the input"},
    "error_xsrf": {
        "ja": "フォームの確認トークンがありません。ページを再読み込みしてやり直してください。",
        "en": "The form's check token is missing or wrong. Reload the page and try again.",
    },
    "error_server": {"ja": "サーバーエラーが発生しました", "en": "The server hit an error"},
    "back": {"ja": "戻る", "en": "Back"},
}


def make_translator(messages: Messages) -> Callable[[str], Callable[..., str]]:
    """`translator(language)` over `messages`: it gives `t(key, **values)`; an unknown key raises KeyError."""

    def translator(language: str) -> Callable[..., str]:
        def t(key: str, **values: object) -> str:
            text = messages[key][language]
            return text.format(**values) if values else text

        return t

    return translator


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page's language: `?lang=`, else the cookie, else the best of Accept-Language, else Japanese."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    ranked = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LANGUAGE
