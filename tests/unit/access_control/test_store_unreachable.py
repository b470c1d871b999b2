"""A PostgreSQL store that does not answer (#19): every `onsite` command that opens the store, the hub's start
included, refuses in the administrator's language, naming the store (without its password) and what to check,
with no traceback. The store URL points at a port nothing listens on."""
from __future__ import annotations

import socket

import pytest

from onsite import cli as onsite_cli


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connecting is refused


def run_against(url: str, lang: str, tmp_path, monkeypatch, command: tuple[str, ...]) -> int:
    """`onsite COMMAND` with the store at `url`, in the language of `lang`, no config file."""
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ONSITE_DB_URL", url)
    monkeypatch.setenv("ONSITE_ANCHOR_FILE", str(tmp_path / "anchor.jsonl"))
    monkeypatch.setenv("LANG", lang)
    for name in ("ONSITE_CONFIG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    return onsite_cli.main(list(command))


@pytest.mark.parametrize("command", [("admin", "person", "list"), ("review", "list"), ("audit", "verify"), ("init",),
                                     ("hub",)])
@pytest.mark.parametrize(("lang", "words"), [
    ("C.UTF-8", ["cannot connect to the Onsite store", "check that the database server is running", "nothing was changed"]),
    ("ja_JP.UTF-8", ["に接続できません", "データベースサーバーが起動していて", "何も変更していません"]),
])
def test_a_store_that_does_not_answer_is_named_with_what_to_check(tmp_path, monkeypatch, capsys, closed_port,
                                                                    command, lang, words):
    url = f"postgresql+psycopg://onsite:s3cret@127.0.0.1:{closed_port}/onsite"
    assert run_against(url, lang, tmp_path, monkeypatch, command) == 2
    err = capsys.readouterr().err
    assert f"postgresql+psycopg://onsite:***@127.0.0.1:{closed_port}/onsite" in err and "s3cret" not in err
    assert "Connection refused" in err and all(word in err for word in words), err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [("admin", "person", "list"), ("admin", "person", "add", "x", "--name", "X", "--no-password"),
                                     ("review", "list"), ("audit", "verify"), ("audit", "head")])
@pytest.mark.parametrize(("lang", "words"), [
    ("C.UTF-8", ["cannot read the Onsite store", "file is not a database", "restore a damaged one", "nothing was changed"]),
    ("ja_JP.UTF-8", ["を読めません", "バックアップから戻して", "何も変更していません"]),
])
def test_a_store_that_is_not_a_database_is_named_with_what_to_do(tmp_path, monkeypatch, capsys, command, lang, words):
    store = tmp_path / "onsite.sqlite"
    store.write_bytes(b"not a database, e.g. a file copied over the store by mistake\n" * 100)
    before = store.read_bytes()
    assert run_against(f"sqlite:///{store}", lang, tmp_path, monkeypatch, command) == 2
    err = capsys.readouterr().err
    assert str(store) in err and all(word in err for word in words), err
    assert "Traceback" not in err
    assert store.read_bytes() == before  # nothing written over it
