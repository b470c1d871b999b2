"""`onsite audit …`: verify, list, export and anchor the ledger; sign tree heads, prove and check, witness.

The ledger is one append-only log of every event (entry decisions, admin actions, the release and
ingress workflow, session events the hub receives from the single-user servers): a hash chain
(access_control.audit) and over it an RFC 9162 Merkle tree with signed heads
(access_control.ledger). `verify` checks both, with the heads and the witnesses' cosignatures;
`prove` prints proofs anyone holding the log's public key checks with `check-proof`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InternalError, OperationalError
from sqlalchemy.orm import Session
from tqdm import tqdm

from access_control import audit, forms, ledger
from access_control.enums import AuditEventType, Outcome
from access_control.errors import PolicyError
from access_control.models import AuditTreeHead
from hub_config.settings import HubSettings, ledger_anchor_file, ledger_key_file
from onsite.commands.language import cli_language
from onsite.commands.admin import (JSON, Command, add_actions, admin_actor, arg, enum_arg, in_transaction, listing, print_json, spoken,
                                   unwritable)
from onsite_base import times
from onsite_base.db import make_engine, session_factory
from onsite_base.errors import UserError
from onsite_base.settings import Settings


def default_anchor(settings: Settings) -> Path:
    """The hub's anchor file (HubSettings.anchor_file, else outside the state directory)."""
    return ledger_anchor_file(settings, HubSettings.load())


def log_key(settings: Settings):
    """The log's signing key (HubSettings.ledger_key_file), made when absent."""
    try:
        return ledger.signing_key(ledger_key_file(settings, HubSettings.load()))
    except PolicyError as e:
        raise spoken(e) from None


def public_key_of(args: argparse.Namespace, settings: Settings):
    """--public-key, else the log's own key when this account can read it; None when neither."""
    try:
        if args.public_key:
            return ledger.read_public_key(Path(args.public_key))
        path = ledger_key_file(settings, HubSettings.load())
        return ledger.signing_key(path, create=False).public_key() if path.exists() else None
    except PermissionError:
        return None  # the hub's key, in a folder only its account may enter: give --public-key
    except PolicyError as e:
        raise spoken(e) from None


def with_factory(settings: Settings, work) -> Any:
    """`work(session_factory)` on the migrated store (for what needs several transactions)."""
    in_transaction(settings, lambda session: 0, read_only=True)  # the store exists and is migrated
    engine = make_engine(settings.db_url)
    try:
        return work(session_factory(engine))
    except PolicyError as e:
        raise spoken(e) from None
    except (OperationalError, InternalError) as e:
        raise spoken(unwritable(e)) from None
    finally:
        engine.dispose()


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    anchor_path = Path(args.anchor) if args.anchor else default_anchor(settings)
    try:
        anchor = audit.LedgerAnchor.read(anchor_path) if anchor_path.exists() else None
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.anchor and anchor is None:
        raise UserError(f"anchor file {anchor_path} does not exist")
    if anchor is None:
        print(f"warning: no ledger anchor at {anchor_path}: newest events deleted would go unnoticed "
              "(the hub writes anchors; see `onsite audit anchor`)", file=sys.stderr)
    public = public_key_of(args, settings)
    if public is None:
        print("warning: no log key (--public-key): the heads' roots are checked, their signatures not", file=sys.stderr)

    def work(session: Session) -> int:
        with tqdm(total=audit.count(session), unit="event", desc="verifying", disable=not sys.stderr.isatty(), leave=False) as bar:
            result = ledger.verify(session, public, anchor, progress=bar.update)
        if not result.ok:
            where = f"first bad event {result.chain.first_bad_seq}: " if not result.chain.ok else ""
            print(f"TAMPERED: {where}{result.problem}")
            return 1
        print(f"ok: {result.chain.checked} events (Merkle root {result.root_hash[:16]}…, {result.signed_heads} signed heads"
              + (f"; anchor at event {anchor.seq} matches)" if anchor else ")"))
        if result.other_keys:
            print(f"warning: heads signed by other keys (roots checked, signatures not): {', '.join(sorted(result.other_keys))}",
                  file=sys.stderr)
        return 0

    return in_transaction(settings, work, read_only=True)


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        if args.out is None:
            audit.export(session, sys.stdout)
            return 0
        out = Path(args.out)
        with out.open("w", encoding="utf-8") as fh:
            n = audit.export(session, fh)
        print(f"wrote {n} events to {out}", file=sys.stderr)
        return 0

    return in_transaction(settings, work, read_only=True)


def run_audit_list(args: argparse.Namespace, settings: Settings) -> int:
    """`audit list`: --since/--until read, and times shown, in the facility's zone (`Settings.timezone`)."""
    zone = settings.timezone
    try:
        since, until = (forms.parse_moment(text, what, zone) if text else None
                        for text, what in ((args.since, "field_since"), (args.until, "field_until")))
    except PolicyError as e:
        raise spoken(e) from None

    def events(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
        found = audit.find_events(session, action=args.action, actor=args.actor, outcome=args.outcome, since=since,
                                  until=until, limit=args.limit)
        return [audit.event_as_dict(e) for e in found]

    def event_cells(row: dict[str, Any]) -> dict[str, Any]:
        details = row["details"]
        summary = ",".join(details["reasons"]) if "reasons" in details else json.dumps(details, ensure_ascii=False)
        when = times.shown(datetime.fromisoformat(row["created_at"]), zone, seconds=True)
        return row | {"created_at": when, "details": summary[:60]}

    return listing(events, ["seq", "created_at", "actor", "action", "object", "outcome", "details"], event_cells)(args, settings)


def run_anchor(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file) if args.file else default_anchor(settings)
    if args.every is None:
        return anchor_once(settings, path)
    if args.every < 1:
        raise UserError("--every needs at least 1 second")
    while True:  # the hub's anchor service; a refusal (ledger tampered) is printed and recorded, then retried
        anchor_once(settings, path)
        time.sleep(args.every)


def anchor_once(settings: Settings, path: Path) -> int:
    """Verify the chain and append its head to `path` in a read (writers are not held up while
    the whole chain is read), sign a tree head, then record LEDGER_VERIFY in a short write."""
    def anchor(session: Session) -> int:
        nonlocal written, problem
        try:
            written = audit.anchor_head(session, path)
        except ValueError as e:
            problem = str(e)
        return 0

    written: audit.LedgerAnchor | None = None
    head: ledger.TreeHead | None = None
    problem = ""
    in_transaction(settings, anchor, read_only=True)
    if written is not None:
        try:
            head = with_factory(settings, lambda factory: ledger.sign_head(factory, log_key(settings)))
        except (ledger.LedgerBroken, ledger.TreeIncomplete) as e:
            problem = f"no tree head signed: {e}"

    def record(session: Session) -> int:
        if written is None or head is None:
            audit.record(session, AuditEventType.LEDGER_VERIFY, actor=admin_actor(), object="ledger",
                         outcome=Outcome.FAILED, details={"problem": problem[:300], "file": str(path)})
            return 1
        audit.record(session, AuditEventType.LEDGER_VERIFY, actor=admin_actor(), object="ledger",
                     details={"anchored_seq": written.seq, "file": str(path), "tree_size": head.tree_size,
                              "root_hash": head.root_hash})
        return 0

    code = in_transaction(settings, record)
    if written is None or head is None:
        print(f"TAMPERED: {problem}", flush=True)
    else:
        print(f"anchored event {written.seq} ({written.hash[:16]}…) in {path}; signed the tree head of {head.tree_size} "
              f"events ({head.root_hash[:16]}…)", flush=True)
    return code


def run_head(args: argparse.Namespace, settings: Settings) -> int:
    key = log_key(settings)
    try:
        head = with_factory(settings, lambda factory: ledger.sign_head(factory, key))
    except (ledger.LedgerBroken, ledger.TreeIncomplete) as e:
        print(f"TAMPERED: no tree head signed: {e}")
        return 1
    if args.json:
        print_json(head.as_dict())
    else:
        print(f"signed the tree head of {head.tree_size} events: root {head.root_hash} at "
              f"{times.shown(datetime.fromisoformat(head.timestamp), settings.timezone, seconds=True)}")
    return 0


def moments(*names: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A table's cells with the ledger's ISO 8601 texts `names` as times, so the table shows them in the
    facility's zone with the zone like every other time (--json keeps the signed ISO text)."""
    return lambda row: row | {name: datetime.fromisoformat(row[name]) for name in names}


def heads(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = session.scalars(select(AuditTreeHead).order_by(AuditTreeHead.id.desc()).limit(args.limit))
    return [ledger.TreeHead.from_row(r).as_dict() for r in rows]


def run_public_key(args: argparse.Namespace, settings: Settings) -> int:
    key = log_key(settings)
    print(ledger.public_pem(key), end="")
    print(f"key id {ledger.key_id(key)}", file=sys.stderr)
    return 0


def run_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    path = ledger_key_file(settings, HubSettings.load())
    log_key(settings)  # made when absent, refused when not private, as for a head
    try:
        last, _, first = with_factory(settings, lambda factory: ledger.rotate_key(factory, path, admin_actor()))
    except (ledger.LedgerBroken, ledger.TreeIncomplete) as e:
        print(f"TAMPERED: the key was not rotated: {e}")
        return 1
    print(f"handed the log key over: the old key {last.key_id[:16]}… signed its last head ({last.tree_size} events) and "
          f"the handover (LEDGER_KEY_ROTATE); the new key {first.key_id[:16]}… signed the head of {first.tree_size} events")
    print("give witnesses and proof checkers nothing new: the old public key still checks, through the handover; "
          "`onsite audit public-key` prints the new one", file=sys.stderr)
    return 0


def run_prove(args: argparse.Namespace, settings: Settings) -> int:
    if (args.event is None) == (args.consistency is None):
        raise UserError("give an EVENT (its seq) or --consistency OLD NEW")

    def work(session: Session) -> int:
        if args.event is not None:
            print_json(ledger.inclusion_proof(session, args.event))
        else:
            print_json(ledger.consistency_proof(session, *args.consistency))
        return 0

    return in_transaction(settings, work, read_only=True)


def read_json(name: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        return json.loads(text)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the {what} {name}: {e}") from None


def run_check_proof(args: argparse.Namespace, settings: Settings) -> int:
    """Needs no store: only the proof and the log's public key (and, to pin it, a head the checker kept)."""
    try:
        public = ledger.read_public_key(Path(args.public_key))
    except PolicyError as e:
        raise spoken(e) from None
    proof = read_json(args.proof, "proof")
    try:
        said = ledger.check_proof(proof, public, settings.timezone)
        if args.head:
            kept = ledger.TreeHead.from_dict(read_json(args.head, "head"))
            heads_in_proof = [proof.get("head"), proof.get("new"), proof.get("old")]
            if kept.as_dict() not in heads_in_proof:
                raise ledger.ProofInvalid(f"the proof is not about the head of {kept.tree_size} events given with --head")
    except ledger.ProofInvalid as e:
        print(f"INVALID: {e}")
        return 1
    print(f"ok: {said}")
    return 0


def witness_log(args: argparse.Namespace) -> tuple[ledger.LogSource, Any]:
    """The log a witness checks: the admin service's log API (an http(s) URL, a Hub API token from
    --token-file or $ONSITE_LOG_TOKEN), or its store (a database URL); and what to close after."""
    source = args.source
    if source.startswith(("http://", "https://")):
        token = os.environ.get("ONSITE_LOG_TOKEN", "")
        if args.token_file:
            try:
                token = Path(args.token_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise UserError(f"cannot read the token file {args.token_file}: {e}") from None
        return ledger.HttpLog(source, token, language=cli_language()), None
    try:
        make_url(source)
    except ArgumentError:
        raise UserError(f"{source!r} is neither the log's API (https://hub.example/services/onsite-admin/) nor a database URL "
                        "(e.g. postgresql+psycopg://witness@log-host/onsite)") from None
    engine = make_engine(source)
    return ledger.StoreLog(session_factory(engine)), engine


def run_witness(args: argparse.Namespace, settings: Settings) -> int:
    try:
        log_public = ledger.read_public_key(Path(args.log_key))
        key = ledger.signing_key(Path(args.key))
    except PolicyError as e:
        raise spoken(e) from None
    log, engine = witness_log(args)
    try:
        cosignature = ledger.witness(log, log_public, key, Path(args.state), args.name)
    except ledger.WitnessRefused as e:
        print(f"REFUSED: {e}")
        return 1
    except ledger.LogUnreachable as e:
        raise UserError(f"the log did not answer as a log: {e}; nothing was co-signed") from None
    except PolicyError as e:
        raise spoken(e) from None
    finally:
        if engine is not None:
            engine.dispose()
    if args.json:
        print_json(cosignature.as_dict())
    else:
        print(f"co-signed the head of {cosignature.tree_size} events ({cosignature.root_hash[:16]}…) as {cosignature.witness}")
    return 0


def witnesses(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [c.as_dict() for c in ledger.last_cosignatures(session)]


def run_witnesses(args: argparse.Namespace, settings: Settings) -> int:
    return listing(witnesses, ["witness", "tree_size", "root_hash", "head_timestamp", "witnessed_at"],
                   lambda row: moments("head_timestamp", "witnessed_at")(row) | {"root_hash": row["root_hash"][:16] + "…"}
                   )(args, settings)


def run_witness_add(args: argparse.Namespace, settings: Settings) -> int:
    token = in_transaction(settings, lambda session: ledger.add_witness(session, args.name, actor=admin_actor()))
    print(token)
    print(f"witness {args.name.strip()} may now read the log's heads and proofs and post its cosignatures with this "
          "credential, and nothing else; it is shown once: hand it over in a file only the witness's account may read "
          "(`onsite audit witness LOG --token-file FILE`). Issuing it again replaces it.", file=sys.stderr)
    return 0


def run_witness_remove(args: argparse.Namespace, settings: Settings) -> int:
    in_transaction(settings, lambda session: ledger.remove_witness(session, args.name, actor=admin_actor()))
    print(f"withdrew the credential of witness {args.name}: the log API refuses it from now on")
    return 0


def witness_credentials(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"witness": name, "token_sha256": digest} for name, digest in sorted(ledger.witness_credentials(session).items())]


def event_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an event number (the seq shown by `onsite audit list`)")
    return int(text)


PUBLIC_KEY = arg("--public-key", metavar="PEM", help="the log's public key (`onsite audit public-key`); default: the log key "
                 "file's, when this account can read it")

AUDIT_COMMANDS = (
    Command("audit verify", "check the whole ledger: hash chain, Merkle tree, signed heads, witness cosignatures; exit 1 "
            "naming the first problem", (
                arg("--anchor", metavar="FILE", help="anchor file to check against (default HubSettings.anchor_file, if present)"),
                PUBLIC_KEY,
            ), run_verify,
            "Recompute every audit event's hash in order (session events included: the hub writes them to this "
            "ledger), and from the same events the Merkle tree: every stored tree node, every signed head's root "
            "(and signature, with the log key) and every witness's cosigned root. Prints 'ok: N events …', or the "
            "first edited, deleted, inserted or reordered event, or the head or cosignature a rewrite contradicts, and "
            "exits 1. If an anchor file exists (see `audit anchor`) the anchored event must still be there with the same "
            "hash."),
    Command("audit export", "write every audit event as JSON lines (schema onsite.audit_event/v1)",
            (arg("--out", metavar="FILE", help="write to FILE instead of standard output"),), run_export),
    Command("audit list", "the newest audit events, filtered (e.g. refused entries: --action entry_decide --outcome denied)", (
        arg("--action", type=enum_arg(AuditEventType), help="event type, e.g. ENTRY_DECIDE, LOGIN_FAIL, GRANT_ADD"),
        arg("--actor", help="who acted: a user name, or admin:<login> for administrators"),
        arg("--outcome", type=enum_arg(Outcome), help="ok, denied or failed"),
        arg("--since", help="YYYY-MM-DD or an ISO date-time (in the facility's time zone unless it has an offset)"),
        arg("--until", help="YYYY-MM-DD or an ISO date-time (in the facility's time zone unless it has an offset)"),
        arg("--limit", type=int, default=100, help="at most this many events, newest first (default 100)"),
        JSON,
    ), run_audit_list,
        "Times are shown, and dates and times without an offset read, in the facility's time zone (setting "
        "Settings.timezone, $ONSITE_TIMEZONE; default Asia/Tokyo): a date means its midnight there; --since is "
        "inclusive, --until exclusive. "
        "For entry decisions the details column shows the denial reasons."),
    Command("audit anchor", "verify, append the chain head to a file outside the database, and sign a tree head", (
        arg("--file", metavar="FILE", help="anchor file (default HubSettings.anchor_file: outside $ONSITE_HOME)"),
        arg("--every", metavar="SECONDS", type=int, help="keep anchoring, every SECONDS (the hub's anchor service)"),
    ), run_anchor,
        "The hub runs this as its anchor service (at start, then every HubSettings.anchor_interval_s): the signed "
        "tree heads come at that interval. Keep the anchor file on storage the database administrator cannot rewrite "
        "(or print it)."),
    Command("audit head", "sign a tree head now: the Merkle root of every event so far", (JSON,), run_head,
            "Extends the stored Merkle tree to the ledger's events, checks that it extends the newest signed head, "
            "then signs (size, root, time) with the log key (HubSettings.ledger_key_file, made when absent) and "
            "stores the head."),
    Command("audit heads", "the newest signed tree heads", (
        arg("--limit", type=int, default=20, help="at most this many, newest first (default 20)"), JSON,
    ), listing(heads, ["tree_size", "root_hash", "timestamp", "key_id"], moments("timestamp"))),
    Command("audit public-key", "print the log's public key (PEM) for proof checkers and witnesses", (), run_public_key),
    Command("audit rotate-key", "hand the log key over to a new one (the old key signs the handover)", (), run_rotate_key,
            "Signs a last head with the current log key (HubSettings.ledger_key_file), makes a new key, records the "
            "handover in the ledger (LEDGER_KEY_ROTATE: the new public key and the old key's last head, signed by the "
            "old key), puts the new key in the key file and signs a head with it. Proofs carry the handovers, so "
            "`check-proof`, `verify` and witnesses holding the old public key accept heads of the new one. Rotate "
            "when the key may have been read by someone else, or on the site's schedule."),
    Command("audit prove", "print an inclusion proof of an event, or a consistency proof between two heads (JSON)", (
        arg("event", nargs="?", type=event_number, help="the event's seq (`onsite audit list`)"),
        arg("--consistency", nargs=2, type=event_number, metavar=("OLD", "NEW"),
            help="the sizes of two signed heads (`onsite audit heads`)"),
    ), run_prove,
        "An inclusion proof names the event (as `audit export` writes it), its audit path and the newest signed head; "
        "`onsite audit check-proof` checks it with only the log's public key."),
    Command("audit check-proof", "check a proof from `audit prove` with only the log's public key (no store needed)", (
        arg("proof", metavar="FILE", help="the proof (JSON), - for standard input"),
        arg("--public-key", metavar="PEM", required=True, help="the log's public key (`onsite audit public-key`)"),
        arg("--head", metavar="FILE", help="a signed head you kept (e.g. a witness's): the proof must be about it"),
    ), run_check_proof, "Exit 0 and 'ok: …' when it checks, else 'INVALID: …' and exit 1."),
    Command("audit witness", "check the log's newest head extends the last one this witness saw, then co-sign it", (
        arg("source", metavar="LOG", help="the log: its API, the admin service's URL (e.g. "
            "https://hub.example/services/onsite-admin/), or its store, a database URL this witness may read (and write "
            "its cosignatures to)"),
        arg("--token-file", metavar="FILE", help="with an API URL: a file holding this witness's credential "
            "(`onsite audit witness-add`), or a Hub API token of an administrator (scope "
            "access:services!service=onsite-admin); default $ONSITE_LOG_TOKEN"),
        arg("--log-key", metavar="PEM", required=True, help="the log's public key (`onsite audit public-key`)"),
        arg("--key", metavar="FILE", required=True, help="this witness's own Ed25519 key (made when absent, 0600)"),
        arg("--state", metavar="FILE", required=True, help="where this witness keeps the last head it co-signed"),
        arg("--name", required=True, help="this witness's name, shown in `onsite audit witnesses`"),
        JSON,
    ), run_witness,
        "Over HTTP it reads the newest signed head and a consistency proof from the log's API (admin service, "
        "`log/head`, `log/consistency`) and posts its cosignature (`log/cosignatures`); nothing the log sends is "
        "trusted. The first run takes the log's head on trust; every later run co-signs only a head the log proves "
        "consistent with the one kept in --state, and prints 'REFUSED: …' (exit 1) otherwise: a history rewritten "
        "even consistently, every hash recomputed and re-signed with the log key, fails here. Run it from another "
        "facility or the operations centre, with its key and state on its own storage."),
    Command("audit witness-add", "issue a witness its own credential for the log API (printed once)", (
        arg("name", help="the witness's name, as it co-signs (`audit witness --name`)"),
    ), run_witness_add,
        "The credential opens the log API's requests (log/head, log/consistency, log/inclusion, log/keys, and "
        "log/cosignatures in the witness's own name) and nothing else: no admin page, no other service, no "
        "administrator's token needed. The ledger records the issue (LEDGER_WITNESS_ADD) with the token's SHA-256 "
        "only. Issuing a name again replaces its credential."),
    Command("audit witness-remove", "withdraw a witness's credential for the log API", (
        arg("name", help="the witness's name"),
    ), run_witness_remove, "Recorded as LEDGER_WITNESS_REMOVE; the log API refuses the credential from then on."),
    Command("audit witness-list", "the witnesses holding a credential for the log API",
            (JSON,), listing(witness_credentials, ["witness", "token_sha256"])),
    Command("audit witnesses", "the last head each witness co-signed", (JSON,), run_witnesses,
            "`onsite audit verify` checks each cosigned root against the events; the admin service's operations "
            "view shows the same (ledger.last_cosignatures)."),
)


def build(parser: argparse.ArgumentParser, name: str) -> None:
    """The parser of `onsite audit …` (the table of `onsite.cli`)."""
    add_actions(parser, AUDIT_COMMANDS)
