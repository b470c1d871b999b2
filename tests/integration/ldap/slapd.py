"""A throwaway OpenLDAP slapd for tests and benchmarks.

`Slapd(directory).start()` writes a slapd.conf (mdb backend; core, cosine,
inetorgperson and nis schemas; memberof + refint overlays; ACLs), a throwaway
CA and server certificate made with `cryptography`, and starts Debian's
/usr/sbin/slapd on free loopback ports for ldap:// (StartTLS offered) and
ldaps://. Entries are added over LDAP, never with slapadd, so the memberof
overlay fills `memberOf`. Imported by tests/integration/ldap/conftest.py and
by bench/bench_ldap.py (by file path; `tests/` is not a package).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = Path("/usr/sbin/slapd")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMA_DIR = Path("/etc/ldap/schema")
BASE_DN = "dc=onsite,dc=test"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
SERVICES_DN = f"ou=services,{BASE_DN}"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "admin-secret-for-tests"
SERVICE_DN = f"cn=onsite-service,{SERVICES_DN}"
SERVICE_PASSWORD = "service-secret-for-tests"
START_TIMEOUT = 10.0

SLAPD_CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
modulepath {modules}
moduleload back_mdb
moduleload memberof
moduleload refint
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key

database mdb
maxsize 67108864
suffix "{base}"
rootdn "{admin}"
rootpw {admin_password}
directory {dir}/data
index objectClass eq
index uid eq
index member eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member

# Passwords: only for binding (and changing one's own).
access to attrs=userPassword
  by self =xw
  by anonymous auth
  by * none
# Groups: the Onsite service account maintains them; people may read them.
access to dn.subtree="{groups}"
  by dn.exact="{service}" write
  by users read
  by * none
access to *
  by dn.exact="{service}" read
  by self read
  by users read
  by * none
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_ca(directory: Path, common_name: str = "Onsite test CA") -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA (PEM at directory/ca.pem); returns the path, its key and certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def _alternative_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def write_server_cert(directory: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                      names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> None:
    """server.pem/server.key for `names` (IP addresses or host names), signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    san = x509.SubjectAlternativeName([_alternative_name(n) for n in names])
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(san, critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "server.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)


@dataclass
class Slapd:
    """One slapd process with its own directory, CA and ports."""

    directory: Path
    port: int = 0
    ldaps_port: int = 0
    certificate_names: tuple[str, ...] = ("127.0.0.1", "localhost")
    """The names the server certificate is for (a test may give names the clients do not use)."""
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def start(self) -> Slapd:
        if not SLAPD.exists():
            raise FileNotFoundError(f"{SLAPD} is missing: apt-get install slapd ldap-utils")
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        _, ca_key, ca_cert = write_ca(self.directory)
        write_server_cert(self.directory, ca_key, ca_cert, self.certificate_names)
        conf = self.directory / "slapd.conf"
        conf.write_text(SLAPD_CONF.format(
            schema=SCHEMA_DIR, modules=MODULE_DIR, dir=self.directory, base=BASE_DN, admin=ADMIN_DN,
            admin_password=ADMIN_PASSWORD, groups=GROUPS_DN, service=SERVICE_DN))
        subprocess.run([str(SLAPD.parent / "slaptest"), "-f", str(conf), "-u"], check=True, capture_output=True)
        self.port, self.ldaps_port = self.port or free_port(), self.ldaps_port or free_port()
        # -d 0: stay in the foreground (so the fixture owns the process) without debug output.
        self.process = subprocess.Popen(
            [str(SLAPD), "-f", str(conf), "-h", f"{self.uri}/ {self.ldaps_uri}/", "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=open(self.directory / "slapd.log", "wb"))
        self._wait_until_answering()
        self._seed_base()
        return self

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.directory / 'slapd.log').read_text(errors='replace')}")
            try:
                self.admin().unbind()
                return
            except ldap3.core.exceptions.LDAPException:
                time.sleep(0.05)
        raise TimeoutError(f"slapd did not answer on {self.uri} within {START_TIMEOUT} s")

    def admin(self) -> ldap3.Connection:
        """A connection bound as the rootdn (plain LDAP, loopback)."""
        server = ldap3.Server(self.uri, connect_timeout=2)
        return ldap3.Connection(server, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True, receive_timeout=5, raise_exceptions=True)

    def _seed_base(self) -> None:
        conn = self.admin()
        conn.add(BASE_DN, ["dcObject", "organization"], {"o": "Onsite tests"})
        for dn in (PEOPLE_DN, GROUPS_DN, SERVICES_DN):
            conn.add(dn, ["organizationalUnit"])
        conn.add(SERVICE_DN, ["organizationalRole", "simpleSecurityObject"], {"userPassword": SERVICE_PASSWORD})
        conn.unbind()

    def add_person(self, uid: str, password: str, uid_number: int, *, people_dn: str = PEOPLE_DN) -> str:
        """An inetOrgPerson + posixAccount under `people_dn`; returns its DN."""
        dn = f"uid={ldap3.utils.dn.escape_rdn(uid)},{people_dn}"
        conn = self.admin()
        conn.add(dn, ["inetOrgPerson", "posixAccount"], {
            "uid": uid, "cn": uid, "sn": uid, "userPassword": password, "uidNumber": uid_number,
            "gidNumber": uid_number, "homeDirectory": f"/home/{uid}"})
        conn.unbind()
        return dn

    def add_group(self, cn: str, member_dns: list[str]) -> str:
        dn = f"cn={ldap3.utils.dn.escape_rdn(cn)},{GROUPS_DN}"
        conn = self.admin()
        conn.add(dn, ["groupOfNames"], {"cn": cn, "member": member_dns or [""]})
        conn.unbind()
        return dn

    def pause(self) -> None:
        """Stop answering (SIGSTOP) while keeping the port open: a slow directory."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def ldapsearch(server: Slapd, base: str, filter_: str, *attributes: str) -> str:
    """The real OpenLDAP client's LDIF output (bound as the rootdn)."""
    result = subprocess.run(
        ["ldapsearch", "-LLL", "-x", "-H", server.uri, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-b", base, filter_,
         *attributes],
        check=True, capture_output=True, text=True, env={**os.environ, "LDAPTLS_REQCERT": "never"})
    return result.stdout
