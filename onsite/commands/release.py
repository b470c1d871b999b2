"""`onsite release …`: check a signed release package offline, and manage the review service's signing key.

`onsite release verify PACKAGE` needs no database and no network: only the package (its folder or its zip) and
the public keys (`--public-key`: the keyring `onsite release key export` writes, or a PEM public key). It speaks
the language of the locale (`cli_language`) and exits 1 when anything fails. The `key` actions change the key
and the keyring and record each change in the ledger (`disclosure_review.workflow.signing`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from access_control import forms
from disclosure_review.workflow import signing
from onsite.commands.admin import open_store
from onsite.commands.language import cli_language
from onsite_base import times
from onsite_base.db import make_engine, session_factory, transaction
from onsite_base.errors import UserError
from onsite_base.os_user import os_login
from onsite_base.i18n import make_translator
from onsite_base.settings import Settings

TEXTS = {
    "verified": {"en": "OK: the release package of request {request} is intact: signed by key {fingerprint}, {files} file(s) as "
                       "listed, {approvals} approval(s) each citing its ledger event",
                 "ja": "OK: 申請 {request} の公表パッケージは改変されていません。鍵 {fingerprint} の署名、manifest のとおりの "
                       "{files} ファイル、監査ログのイベントを示す承認 {approvals} 件"},
    "refused": {"en": "REFUSED: the release package {path} does not verify:",
                "ja": "不合格: 公表パッケージ {path} は検証できませんでした:"},
    "warning": {"en": "warning", "ja": "警告"},
    "unreadable": {"en": "{detail}", "ja": "読み込めません: {detail}"},
    "no_keys": {"en": "name the public key(s) to check with: --public-key FILE (a keyring from `onsite release key "
                      "export`, or a PEM public key); none was given and {path} does not exist",
                "ja": "検証に使う公開鍵を --public-key FILE で指定してください(`onsite release key export` の鍵リング、"
                      "または PEM の公開鍵)。指定がなく、{path} もありません"},
}


text_in = make_translator(TEXTS)


def build(parser: argparse.ArgumentParser, name: str) -> None:
    """The parser of `onsite release …` (the table of `onsite.cli`)."""
    parser.description = "Signed release packages: verify one offline; create, list, export, rotate or revoke the " \
                         "review service's signing key."
    actions = parser.add_subparsers(dest="release_command", metavar="ACTION", required=True)

    verify = actions.add_parser(
        "verify", help="check a release package (folder or zip) offline with the public key(s)",
        description="Checks the Ed25519 signature of manifest.json by one of the public keys given, within that "
        "key's validity (a key revoked before the package was signed is refused; revoked after: a warning), every "
        "file's SHA-256, that no file was added or removed, and that the approvals the manifest cites are "
        "consistent with it. Exit status 0 when it verifies, 1 when not, 2 on bad input.")
    verify.add_argument("package", type=Path, metavar="PACKAGE_DIR_OR_ZIP")
    verify.add_argument("--public-key", type=Path, action="append", metavar="FILE",
                        help="a keyring (`onsite release key export`) or a PEM public key; repeatable. Default: "
                        "this installation's keyring beside ReleaseSigning.key_file")
    verify.add_argument("--ledger", type=Path, metavar="EXPORT",
                        help="also check each cited approval against the ledger (an `onsite audit export` file): "
                        "present with the cited hash, intact, an approval of that output, by enough distinct "
                        "reviewers other than the requester")
    verify.add_argument("--json", action="store_true", help="print the findings as JSON (English texts)")
    verify.set_defaults(run=_verify)

    key = actions.add_parser("key", help="the review service's signing key: ensure, list, export, rotate, revoke")
    keys = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    ensure = keys.add_parser("ensure", help="create the signing key if absent (as the service does at start)")
    ensure.add_argument("--json", action="store_true", help='print {"created": bool, "fingerprint": ...}')
    ensure.set_defaults(run=_ensure)
    keys.add_parser("list", help="every key the service has had, with its validity").set_defaults(run=_list)
    export = keys.add_parser("export", help="print the public keyring (hand it to whoever verifies packages)")
    export.add_argument("--pem", metavar="FINGERPRINT", help="print only this key as a PEM public key")
    export.set_defaults(run=_export)
    keys.add_parser("rotate", help="replace the signing key: the old one is retired, its packages still verify") \
        .set_defaults(run=_rotate)
    revoke = keys.add_parser(
        "revoke", help="revoke a key: packages it signed from --effective on are refused",
        description="Revoke a signing key (e.g. its private key may have been read). Packages it signed before "
        "--effective verify with a warning, later ones are refused. Revoking the current key makes a new one.")
    revoke.add_argument("fingerprint", metavar="FINGERPRINT", help="the key's fingerprint (at least 8 hex digits)")
    revoke.add_argument("--reason", required=True, help="why (recorded in the ledger and the keyring)")
    revoke.add_argument("--effective", metavar="TIME",
                        help="from when (default now): the earliest time the key may have been taken; an ISO "
                        "date-time, in the facility's time zone unless it has an offset")
    revoke.set_defaults(run=_revoke)


def _section_paths(settings: Settings) -> tuple[signing.ReleaseSigning, Path]:
    section = signing.ReleaseSigning.of(settings)
    return section, section.keyring_path(settings.home)


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    language = cli_language()
    paths = args.public_key
    if not paths:
        default = _section_paths(settings)[1]
        if not default.exists():
            raise UserError(text_in(language)("no_keys", path=default))
        paths = [default]
    try:
        keys = [key for path in paths for key in signing.read_public_keys(path)]
        result = signing.verify(signing.read_package(args.package), keys)
        if args.ledger is not None and result.manifest is not None:
            signing.check_ledger(result, signing.read_ledger_export(args.ledger))
    except (signing.SigningKeyInvalid, signing.PackageUnreadable) as exc:  # bad input: exit 2, in the locale's language
        raise UserError(text_in(language)("unreadable", detail=exc)) from None
    if args.json:
        print(json.dumps({"ok": result.ok, "problems": [f.text() for f in result.problems],
                          "warnings": [f.text() for f in result.warnings]}, ensure_ascii=False, indent=2))
    elif result.ok:
        manifest = result.manifest or {}
        approvals = sum(1 for o in manifest["outputs"] for v in o["votes"] if "ledger" in v)
        print(text_in(language)("verified", request=manifest["request"]["id"], fingerprint=result.key.fingerprint,
                    files=len(manifest["files"]), approvals=approvals))
    else:
        print(text_in(language)("refused", path=args.package))
        for finding in result.problems:
            print(f"  - {finding.text(language)}")
    for finding in result.warnings if not args.json else ():
        print(f"{text_in(language)('warning')}: {finding.text(language)}")
    return 0 if result.ok else 1


def _factory(settings: Settings):
    open_store(settings)
    return session_factory(make_engine(settings.db_url))


def _actor() -> str:
    return f"cli:{os_login()}"


def _ensure(args: argparse.Namespace, settings: Settings) -> int:
    section, _ = _section_paths(settings)
    existed = section.key_path(settings.home).exists()
    with transaction(_factory(settings)) as session:
        signer = signing.open_signer(session, section, settings.home, _actor())
    fp = signer.record.fingerprint
    print(json.dumps({"created": not existed, "fingerprint": fp}) if args.json else
          f"release signing key {fp} ({'created' if not existed else 'in place'}: {section.key_path(settings.home)})")
    return 0


def _shown(record: signing.KeyRecord, zone: str) -> str:
    state = ("revoked from " + times.shown(record.revoked_at, zone) + f" ({record.revocation_reason})"
             if record.revoked_at else "retired " + times.shown(record.retired_at, zone) if record.retired_at
             else "current")
    return f"{record.fingerprint}  made {times.shown(record.created_at, zone)}  {state}"


def _list(args: argparse.Namespace, settings: Settings) -> int:
    for record in signing.read_keyring(_section_paths(settings)[1]):
        print(_shown(record, settings.timezone))
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    keys = signing.read_keyring(_section_paths(settings)[1])
    if not keys:
        raise UserError("the keyring is empty: the review service has not made its signing key yet "
                        "(`onsite release key ensure`)")
    print(signing.public_pem(signing.find_key(keys, args.pem)) if args.pem else signing.keyring_json(keys), end="")
    return 0


def _rotate(args: argparse.Namespace, settings: Settings) -> int:
    section, _ = _section_paths(settings)
    with transaction(_factory(settings)) as session:
        old, new = signing.rotate(session, section, settings.home, _actor())
    print(f"new release signing key {new.fingerprint}" + (f"; {old.fingerprint} retired" if old else "")
          + ": give the new keyring to whoever verifies packages (`onsite release key export`)")
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    section, _ = _section_paths(settings)
    effective = forms.parse_moment(args.effective, "field_since", settings.timezone) if args.effective else None
    with transaction(_factory(settings)) as session:
        revoked, new = signing.revoke(session, section, settings.home, args.fingerprint, args.reason, _actor(),
                                      effective)
    print(f"release signing key {revoked.fingerprint} revoked from {times.shown(revoked.revoked_at, settings.timezone)}"
          + (f"; new key {new.fingerprint}" if new else "")
          + ": give the new keyring to whoever verifies packages (`onsite release key export`)")
    return 0
