"""Stored enumerations. Values are written to the database and the ledger:
changing or removing one needs a migration; adding one does not."""
from __future__ import annotations

import enum


class Role(enum.Enum):
    """What a person may do; one person may hold several roles."""

    RESEARCHER = "RESEARCHER"
    REVIEWER = "REVIEWER"
    ADMINISTRATOR = "ADMINISTRATOR"
    FACILITY_MANAGER = "FACILITY_MANAGER"
    """Manages the facilities of their `FacilityManager` rows, and nothing else."""


class Outcome(enum.Enum):
    """How the audited action ended."""

    OK = "OK"
    DENIED = "DENIED"
    FAILED = "FAILED"


class AuditEventType(enum.Enum):
    """What happened, as NOUN_VERB. Every state change of the path writes one."""

    # entry and sessions
    ENTRY_DECIDE = "ENTRY_DECIDE"  # a login or spawn entry decision, allowed or denied
    LOGIN_FAIL = "LOGIN_FAIL"  # wrong password or unknown account
    SESSION_START = "SESSION_START"
    SESSION_STOP = "SESSION_STOP"  # exactly one per session, written by the spawner (stopped_by, reason)
    SESSION_END = "SESSION_END"  # an administrator asked the hub to end a session (requested_by, reason)
    SESSION_ACTIVITY = "SESSION_ACTIVITY"  # inside a session: code run, files, kernels, lock-down refusals (hub_config.audit_sink)
    # administration
    PERSON_ADD = "PERSON_ADD"
    PERSON_CHANGE = "PERSON_CHANGE"
    ROLE_GRANT = "ROLE_GRANT"
    ROLE_REVOKE = "ROLE_REVOKE"
    PROJECT_ADD = "PROJECT_ADD"
    PROJECT_CHANGE = "PROJECT_CHANGE"
    MEMBER_ADD = "MEMBER_ADD"
    MEMBER_REMOVE = "MEMBER_REMOVE"
    DATASET_INGEST = "DATASET_INGEST"
    GRANT_ADD = "GRANT_ADD"
    GRANT_REVOKE = "GRANT_REVOKE"
    FACILITY_ADD = "FACILITY_ADD"
    FACILITY_CHANGE = "FACILITY_CHANGE"
    TERMINAL_ADD = "TERMINAL_ADD"
    TERMINAL_REMOVE = "TERMINAL_REMOVE"
    ACCREDITATION_ADD = "ACCREDITATION_ADD"
    ACCREDITATION_REVOKE = "ACCREDITATION_REVOKE"
    BOOKING_ADD = "BOOKING_ADD"
    BOOKING_CANCEL = "BOOKING_CANCEL"
    ADMIN_ACCESS = "ADMIN_ACCESS"  # the admin faces refused someone (DENIED), or a facility manager read records (OK)
    # disclosure review
    RELEASE_SUBMIT = "RELEASE_SUBMIT"
    OUTPUT_CHECK = "OUTPUT_CHECK"
    OUTPUT_PROTECT = "OUTPUT_PROTECT"  # a reviewer applied (or removed) protection on an output
    OUTPUT_DECIDE = "OUTPUT_DECIDE"
    RELEASE_DECIDE = "RELEASE_DECIDE"
    RELEASE_PACKAGE = "RELEASE_PACKAGE"
    RELEASE_COLLECT = "RELEASE_COLLECT"
    RELEASE_WITHDRAW = "RELEASE_WITHDRAW"
    INGRESS_SUBMIT = "INGRESS_SUBMIT"  # reference data brought in for review (an ingress request)
    INGRESS_DECIDE = "INGRESS_DECIDE"  # a reviewer's vote on an ingress request, and its approval or rejection
    INGRESS_COLLECT = "INGRESS_COLLECT"  # a session read approved reference data
    INGRESS_WITHDRAW = "INGRESS_WITHDRAW"  # the requester withdrew an undecided ingress request
    INGRESS_RETIRE = "INGRESS_RETIRE"  # approved reference data retired (with the reason): no longer usable
    RELEASE_KEY_CREATE = "RELEASE_KEY_CREATE"  # the review service made its release signing key (fingerprint, public key)
    RELEASE_KEY_ROTATE = "RELEASE_KEY_ROTATE"  # a new signing key replaced the old one (both fingerprints)
    RELEASE_KEY_REVOKE = "RELEASE_KEY_REVOKE"  # a signing key revoked from a time on (fingerprint, reason)
    # the ledger itself
    LEDGER_VERIFY = "LEDGER_VERIFY"
    LEDGER_KEY_ROTATE = "LEDGER_KEY_ROTATE"  # the log key handed over to a new one (the transition, signed by the old key)
    LEDGER_WITNESS_ADD = "LEDGER_WITNESS_ADD"  # a witness issued its log API credential (its name, the token's SHA-256)
    LEDGER_WITNESS_REMOVE = "LEDGER_WITNESS_REMOVE"  # a witness's credential withdrawn
