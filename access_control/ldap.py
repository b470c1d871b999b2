"""The LDAP directory: the groups that mirror roles and project memberships.

The production directory (the local argon2 store in `identity.py` is the
embedded default). The policy store holds who has which role and project; the
admin commands mirror that here, as the groups under `groups_base` a person is
a `member` of: `cn=onsite-role-<role>` (researcher, reviewer, administrator)
and `cn=onsite-proj-<project id>` (`ensure_group`, `add_member`,
`remove_member`), so other systems of the facility see the same groups. The
hub checks passwords through ldapauthenticator (`hub_config.ldap_authenticator`)
and takes roles from the policy store, so nothing here reads a person's groups
at log-in.

Security rules kept in this module:
- Every user-supplied value is escaped: `escape_filter_chars` in search
  filters (RFC 4515 section 3), `escape_rdn` in DNs (RFC 4514 section 2.4).
- User names are NFKC-normalised first and refused when normalisation changes
  them (full-width `ａｌｉｃｅ`, ligatures, the Kelvin sign...): a look-alike
  spelling never reaches the directory as somebody else's name.
- A directory that is down, slow, or whose TLS certificate does not verify
  raises `DirectoryUnavailable` (fail closed), logged with the setting to check.
"""
from __future__ import annotations

import enum
import logging
import socket
import ssl
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from traitlets import Float, Int, List, TraitError, Unicode, UseEnum, validate
from traitlets.config import Config

from access_control.accounts import canonical_username
from access_control.entry import DenialReason
from access_control.enums import Role
from access_control.errors import InputInvalid, PolicyError, RecordNotFound
from access_control.policy import PROJECT_ID_PATTERN
from onsite_base.config import Section, SettingInvalid, load_config, setting_name
from onsite_base.settings import AbsolutePath

log = logging.getLogger(__name__)

ROLE_GROUP_PREFIX = "onsite-role-"
PROJECT_GROUP_PREFIX = "onsite-proj-"
MAX_NAME_LENGTH = 64
"""Longer typed names are refused before anything else (user names have at most 32 characters)."""
EMPTY_MEMBER = ""
"""groupOfNames must have a member: an empty group holds the empty DN, which is nobody."""
# Bind results that mean "these credentials are wrong", not "the directory is broken".
CREDENTIAL_RESULTS = frozenset({"invalidCredentials", "invalidDNSyntax", "noSuchObject", "inappropriateAuthentication"})


class TlsMode(enum.Enum):
    """How the connection to the directory is protected."""

    START_TLS = "START_TLS"
    """ldap:// (port 389), upgraded with StartTLS before any bind (the default)."""
    LDAPS = "LDAPS"
    """ldaps:// (port 636): TLS from the first byte."""
    NONE = "NONE"
    """Plain text: passwords cross the network readable. Only for a directory on loopback."""


class LdapSettingsInvalid(SettingInvalid):
    """The LDAP configuration cannot work; the message names the setting."""


class DirectoryUnavailable(Exception):
    """The directory could not be asked: down, slow, or its certificate did not verify.

    `reason` says what happened and what to check, in Japanese and English (`access_control.messages`,
    key `ldap_…`; the admin faces show it in their language, `str()` is the English); `setting` names the
    settings to check. A person logging in sees only `user_message` (the login is refused, never allowed).
    """

    USER_MESSAGE = {lang: DenialReason.DIRECTORY_UNAVAILABLE.message(lang) for lang in ("ja", "en")}

    def __init__(self, key: str, setting: str, **params: object) -> None:
        self.reason = PolicyError(key, **params)
        self.setting = setting
        super().__init__(self.reason.text("en"))

    @classmethod
    def user_message(cls, lang: str = "en") -> str:
        return cls.USER_MESSAGE["ja" if lang == "ja" else "en"]


class LdapSettings(Section):
    """Where the LDAP directory is and how Onsite binds to it: the hub's log-in and the admin
    commands read these same settings. Unset `server_uris` means no directory (the local store)."""

    invalid = LdapSettingsInvalid

    server_uris = List(
        Unicode(),
        help="""ldap://host:port or ldaps://host:port, tried in order (the next when one does not
        answer). In the environment: separated by spaces. Empty (the default): no directory,
        people log in against the local store. The hub's log-in uses only the first.""",
    ).tag(config=True, env="ONSITE_LDAP_URI")

    people_base = Unicode(
        help="Subtree holding people, e.g. ou=people,dc=example,dc=jp. Required with server_uris.",
    ).tag(config=True, env="ONSITE_LDAP_PEOPLE_BASE")

    groups_base = Unicode(
        help="""Subtree holding the onsite-role-* and onsite-proj-* groups the admin commands
        maintain, e.g. ou=groups,dc=example,dc=jp. Required with server_uris.""",
    ).tag(config=True, env="ONSITE_LDAP_GROUPS_BASE")

    bind_dn_template = Unicode(
        None,
        allow_none=True,
        help="""Bind by template: uid={username},ou=people,dc=example,dc=jp ({username} exactly
        once, escaped as an RDN value). Unset: bind by search with service_dn.""",
    ).tag(config=True, env="ONSITE_LDAP_BIND_DN_TEMPLATE")

    service_dn = Unicode(
        None,
        allow_none=True,
        help="""Service account that searches for people (bind by search) and maintains the groups
        (needs write access under groups_base). Goes with service_password_file.""",
    ).tag(config=True, env="ONSITE_LDAP_SERVICE_DN")

    service_password_file = AbsolutePath(
        None,
        allow_none=True,
        help="""File holding the service account's password (read at start, surrounding white space
        dropped). The password itself is never taken from the environment or the config file;
        make the file 0600, readable by the hub's account only.""",
    ).tag(config=True, env="ONSITE_LDAP_SERVICE_PASSWORD_FILE")

    service_password = Unicode(None, allow_none=True, help="Read from service_password_file (tests give it directly).")

    user_attribute = Unicode("uid", help="Attribute holding a person's user name.").tag(config=True)
    user_object_class = Unicode("posixAccount", help="Object class of people's entries.").tag(config=True)
    group_object_class = Unicode("groupOfNames", help="Object class of the groups Onsite creates.").tag(config=True)
    member_attribute = Unicode("member", help="Attribute of a group holding its members' DNs.").tag(config=True)

    tls = UseEnum(
        TlsMode,
        default_value=TlsMode.START_TLS,
        help="""How the connection is protected: START_TLS (ldap://, upgraded before any bind),
        LDAPS (ldaps://), NONE (plain text: passwords cross the network readable; only for a
        directory on the same host). Certificates are always verified (see ca_file).""",
    ).tag(config=True, env="ONSITE_LDAP_TLS")

    ca_file = AbsolutePath(
        None,
        allow_none=True,
        help="PEM file of the CA that signed the directory's certificate. Unset: the system's CAs.",
    ).tag(config=True, env="ONSITE_LDAP_CA_FILE")

    connect_timeout = Float(
        3.0,
        help="Seconds to wait for a TCP connection to each server. Positive.",
    ).tag(config=True, env="ONSITE_LDAP_CONNECT_TIMEOUT")

    receive_timeout = Int(
        5,
        help="""Whole seconds to wait for each answer (bind, search, modify); ldap3 on Linux takes
        only whole seconds. Positive. The hub's log-in waits at most connect_timeout + 3 x this.""",
    ).tag(config=True, env="ONSITE_LDAP_RECEIVE_TIMEOUT")

    @validate("connect_timeout", "receive_timeout")
    def _positive(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError(f"{proposal.trait.name} must be a positive number of seconds")
        return proposal.value

    @classmethod
    def configured(cls, config: Config) -> LdapSettings | None:
        """The directory `config` describes, or None when it names no server (the local store)."""
        return cls(config=config) if config.LdapSettings.get("server_uris") else None

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> LdapSettings | None:
        """From the config file and ONSITE_LDAP_* variables; None when no server is named."""
        return cls.configured(load_config([cls], environ))

    def check(self) -> None:
        def name(trait: str) -> str:
            return setting_name(LdapSettings, trait)

        if not self.server_uris:
            raise LdapSettingsInvalid(f"{name('server_uris')}: server_uris is empty: give at least one ldap:// or "
                                      "ldaps:// URI")
        for uri in self.server_uris:
            scheme = uri.split("://", 1)[0].lower()
            if scheme not in ("ldap", "ldaps"):
                raise LdapSettingsInvalid(f"{name('server_uris')}: {uri!r} is not an ldap:// or ldaps:// URI")
            if (scheme == "ldaps") != (self.tls is TlsMode.LDAPS):
                raise LdapSettingsInvalid(f"{name('server_uris')}: {uri!r} does not fit tls={self.tls.value} "
                                          "(LDAPS needs ldaps:// URIs; START_TLS and NONE need ldap://)")
        for base in ("people_base", "groups_base"):
            if not getattr(self, base):
                raise LdapSettingsInvalid(f"{name(base)} is not set (needed with server_uris)")
        if self.bind_dn_template is not None and self.bind_dn_template.count("{username}") != 1:
            raise LdapSettingsInvalid(f"{name('bind_dn_template')} must contain {{username}} exactly once, "
                                      "e.g. uid={username},ou=people,dc=example,dc=jp")
        if self.bind_dn_template is None and self.service_dn is None:
            raise LdapSettingsInvalid(f"set {name('bind_dn_template')} (bind by template) or {name('service_dn')} "
                                      "(bind by search)")
        if self.service_password is None and self.service_password_file is not None:
            try:
                self.service_password = self.service_password_file.read_text().strip()
            except OSError as error:
                raise LdapSettingsInvalid(f"{name('service_password_file')}: {error}") from None
        if (self.service_dn is None) != (self.service_password is None):
            raise LdapSettingsInvalid(f"{name('service_dn')} and the service password "
                                      f"({name('service_password_file')}) go together")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise LdapSettingsInvalid(f"{name('ca_file')}: ca_file {self.ca_file} does not exist")


def login_name(raw: str) -> str:
    """The canonical form of a typed user name, or InputInvalid.

    Refused when NFKC normalisation changes it: full-width and other
    compatibility spellings are ambiguous, so they never stand for an account.
    Then the local store's rules apply (lower case, an OS account name), which
    also refuses every LDAP filter or DN metacharacter and non-Latin look-alikes.
    """
    if len(raw) > MAX_NAME_LENGTH:
        raise InputInvalid("username_too_long", length=len(raw))
    if unicodedata.normalize("NFKC", raw) != raw:
        raise InputInvalid("username_compatibility", raw=raw[:64])
    return canonical_username(raw)


def role_group(role: Role) -> str:
    return ROLE_GROUP_PREFIX + role.value.lower()


def project_group(project_id: str) -> str:
    if not PROJECT_ID_PATTERN.fullmatch(project_id):
        raise InputInvalid("project_id_invalid", id=project_id)
    return PROJECT_GROUP_PREFIX + project_id


class LdapDirectory:
    """The Onsite groups of an LDAP directory, maintained by the admin commands (ldap3, synchronous).

    Each call opens its own connection, so one instance may be used from
    several threads. Every method raises `DirectoryUnavailable` when the
    directory cannot be asked.
    """

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(settings.ca_file) if settings.ca_file else None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        servers = [ldap3.Server(uri, tls=tls, connect_timeout=settings.connect_timeout, get_info=ldap3.NONE)
                   for uri in settings.server_uris]
        # FIRST: always try the servers in the configured order; one round (active=1), then give up.
        self._server: ldap3.Server | ldap3.ServerPool = (
            servers[0] if len(servers) == 1 else ldap3.ServerPool(servers, ldap3.FIRST, active=1, exhaust=False))

    # --- connections -------------------------------------------------------------------

    @contextmanager
    def _bound(self, dn: str | None, password: str | None) -> Iterator[ldap3.Connection | None]:
        """A connection bound as `dn` (None: anonymous), or None when the credentials are refused."""
        conn = ldap3.Connection(self._server, user=dn, password=password, receive_timeout=self.settings.receive_timeout,
                                raise_exceptions=False, auto_bind=ldap3.AUTO_BIND_NONE)
        try:
            try:
                conn.open(read_server_info=False)
                # ldap3 writes a request in several small segments: without this, Nagle plus the server's
                # delayed ACK add 40 ms to every TLS round trip.
                conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.settings.tls is TlsMode.START_TLS and not conn.start_tls(read_server_info=False):
                    raise ldap_errors.LDAPStartTLSError(conn.result.get("description") if conn.result else "refused")
                bound = conn.bind(read_server_info=False)
            except ldap_errors.LDAPException as error:
                raise self._unavailable(error) from error
            if not bound:
                outcome = (conn.result or {}).get("description", "")
                if outcome not in CREDENTIAL_RESULTS:  # busy, unwillingToPerform...: not the person's fault
                    problem = DirectoryUnavailable(f"LDAP bind answered {outcome!r}", "the directory's own log")
                    log.error("LDAP directory unavailable: %s", problem)
                    raise problem
                yield None
            else:
                yield conn
        finally:
            try:
                conn.unbind()
            except ldap_errors.LDAPException:
                pass  # the socket is gone already; nothing to release

    def _unavailable(self, error: Exception) -> DirectoryUnavailable:
        text = str(error).lower()
        uris = " ".join(self.settings.server_uris)
        # A time-out first: a directory that hangs mid-handshake ("The handshake operation timed out") is slow or
        # stuck, not signed by the wrong CA.
        if "timed out" in text or isinstance(error, ldap_errors.LDAPSocketReceiveError):
            problem = DirectoryUnavailable("ldap_timeout", "connect_timeout/receive_timeout", uris=uris, error=error)
        elif any(word in text for word in ("certificate", "ssl", "tls", "handshake")):
            problem = DirectoryUnavailable("ldap_tls_failed", "ca_file and tls", uris=uris, error=error)
        else:
            problem = DirectoryUnavailable("ldap_unreachable", "server_uris", uris=uris, error=error)
        log.error("LDAP directory unavailable: %s", problem)
        return problem

    @contextmanager
    def _service(self) -> Iterator[ldap3.Connection]:
        """A connection bound as the service account (searches without a template, group maintenance)."""
        if self.settings.service_dn is None:
            raise LdapSettingsInvalid("this needs service_dn and service_password (searching people, maintaining groups)")
        with self._bound(self.settings.service_dn, self.settings.service_password) as conn:
            if conn is None:
                problem = DirectoryUnavailable("ldap_service_bind_refused", "service_dn and service_password")
                log.error("LDAP directory unavailable: %s", problem)
                raise problem
            yield conn

    def _call(self, conn: ldap3.Connection, operation: str, *args: object, **kwargs: object) -> bool:
        try:
            return getattr(conn, operation)(*args, **kwargs)
        except ldap_errors.LDAPException as error:
            raise self._unavailable(error) from error

    # --- people and groups ---------------------------------------------------------------

    def _search_person(self, conn: ldap3.Connection, name: str) -> str | None:
        """The DN of the one person whose user_attribute equals `name` (escaped), else None."""
        s = self.settings
        query = f"(&(objectClass={s.user_object_class})({s.user_attribute}={escape_filter_chars(name)}))"
        self._call(conn, "search", s.people_base, query, ldap3.SUBTREE, attributes=[], size_limit=2)
        if len(conn.entries) != 1:
            if len(conn.entries) > 1:
                log.error("%d people match %s=%s: is user_attribute unique under people_base?",
                          len(conn.entries), s.user_attribute, name)
            return None
        return conn.entries[0].entry_dn

    def _person_dn(self, conn: ldap3.Connection, name: str) -> str | None:
        if self.settings.bind_dn_template is not None:
            return self.settings.bind_dn_template.format(username=escape_rdn(name))
        return self._search_person(conn, name)

    def _require_person(self, conn: ldap3.Connection, name: str) -> str:
        """The DN of an existing person, or RecordNotFound (a template DN is checked, not assumed)."""
        dn = self._person_dn(conn, name)
        if dn is None or (self.settings.bind_dn_template is not None
                          and not self._call(conn, "search", dn, "(objectClass=*)", ldap3.BASE, attributes=[])):
            raise RecordNotFound("ldap_no_person", name=name, base=self.settings.people_base)
        return dn

    # --- group maintenance (admin commands) ------------------------------------------------

    def group_dn(self, cn: str) -> str:
        if not (cn.startswith(ROLE_GROUP_PREFIX) or cn.startswith(PROJECT_GROUP_PREFIX)):
            raise InputInvalid("ldap_not_onsite_group", cn=cn, roles=ROLE_GROUP_PREFIX, projects=PROJECT_GROUP_PREFIX)
        return f"cn={escape_rdn(cn)},{self.settings.groups_base}"

    def ensure_group(self, cn: str) -> bool:
        """Create the group if it is missing; True when created."""
        dn = self.group_dn(cn)
        with self._service() as conn:
            if self._call(conn, "add", dn, [self.settings.group_object_class],
                          {"cn": cn, self.settings.member_attribute: [EMPTY_MEMBER]}):
                log.info("LDAP group %s created", dn)
                return True
            if conn.result["description"] == "entryAlreadyExists":
                return False
            raise self._refused("ldap_group_create_refused", dn, conn)

    def add_member(self, cn: str, username: str) -> bool:
        """Add the person to the group; True when they were not a member yet."""
        return self._change_membership(cn, username, add=True)

    def remove_member(self, cn: str, username: str) -> bool:
        """Remove the person from the group; True when they were a member."""
        return self._change_membership(cn, username, add=False)

    def _change_membership(self, cn: str, username: str, *, add: bool) -> bool:
        name = login_name(username)
        group = self.group_dn(cn)
        attribute = self.settings.member_attribute
        with self._service() as conn:
            person = self._require_person(conn, name)
            if not self._call(conn, "search", group, "(objectClass=*)", ldap3.BASE, attributes=[attribute]):
                raise RecordNotFound("ldap_no_group", cn=cn, base=self.settings.groups_base)
            current = [str(v) for v in conn.entries[0].entry_attributes_as_dict.get(attribute, [])]
            present = [v for v in current if v.lower() == person.lower()]
            if add == bool(present):
                return False
            changes: list[tuple[str, list[str]]]
            if add:
                changes = [(ldap3.MODIFY_ADD, [person])]
                if EMPTY_MEMBER in current:
                    changes.append((ldap3.MODIFY_DELETE, [EMPTY_MEMBER]))
            else:
                changes = [(ldap3.MODIFY_DELETE, present)]
                if len(current) == len(present):  # groupOfNames must keep a member
                    changes.append((ldap3.MODIFY_ADD, [EMPTY_MEMBER]))
            if not self._call(conn, "modify", group, {attribute: changes}):
                raise self._refused("ldap_group_members_refused", group, conn)
        log.info("LDAP group %s: %s %s", group, "added" if add else "removed", name)
        return True

    # The admin commands' hooks: the group is created on first use.

    def grant_role(self, username: str, role: Role) -> bool:
        self.ensure_group(role_group(role))
        return self.add_member(role_group(role), username)

    def revoke_role(self, username: str, role: Role) -> bool:
        self.ensure_group(role_group(role))
        return self.remove_member(role_group(role), username)

    def add_to_project(self, project_id: str, username: str) -> bool:
        self.ensure_group(project_group(project_id))
        return self.add_member(project_group(project_id), username)

    def remove_from_project(self, project_id: str, username: str) -> bool:
        self.ensure_group(project_group(project_id))
        return self.remove_member(project_group(project_id), username)

    @staticmethod
    def _refused(key: str, dn: str, conn: ldap3.Connection) -> DirectoryUnavailable:
        problem = DirectoryUnavailable(key, "groups_base", dn=dn, description=conn.result.get("description"))
        log.error("LDAP directory refused a change: %s", problem)
        return problem
