"""The Ansible roles (ansible/) applied to this machine with a local connection.

Everything the playbook writes goes under a throwaway prefix in /var/tmp (the
install root, configuration, state and unit directories); the databases are
throwaway ones on the local PostgreSQL; the proxy's service account has a name
of this test's own. There is no systemd here, so the units are rendered (and
checked with `systemd-analyze verify`), not started: the test starts the proxy
and the hub itself with each unit's ExecStart, User, EnvironmentFile and
Environment, logs in over HTTPS as the administrator the deployment created,
stops both, and runs the playbook again, which must change nothing.

Needs root (service accounts, chown), the Debian packages the role installs
(apt) and about 3 minutes (150 CPU-s): two playbook runs of ~60 tasks, the
hub's start, the slapd role twice; uv fills the venv in seconds from its cache
(~/.cache/uv, filled by the first run on a machine). Run it under the
heavy-test lock (/tmp/onsite-heavy-tests.lock) like every test that starts a hub;
under pytest-xdist it runs beside the hub tests (tests/README.md).
"""
from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import ldap3
import psycopg
import pytest
import requests

from functional.hubtools import ROOT, free_port, login_error
from hub_config.pages import MESSAGES
from integration.ldap.slapd import write_ca, write_server_cert

pytestmark = pytest.mark.integration

ANSIBLE_DIR = ROOT / "ansible"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
RECAP = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
UNITS = ("onsite-proxy.service", "onsite-hub.service", "onsite-nftables.service")


def set_variables(inventory: Path, **variables) -> None:
    data = json.loads(inventory.read_text())
    data["onsite_hub"]["vars"].update(variables)
    inventory.write_text(json.dumps(data))


def playbook(inventory: Path, log: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_STDOUT_CALLBACK": "default"}
    result = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(inventory), "site.yml", *extra], cwd=ANSIBLE_DIR,
                            env=env, capture_output=True, text=True, timeout=900)
    log.write_text(result.stdout + result.stderr)
    return result


def recap(result: subprocess.CompletedProcess) -> dict[str, int]:
    match = RECAP.search(result.stdout)
    assert match, f"no PLAY RECAP in the output:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def changed_tasks(output: str) -> list[str]:
    """The TASK headers followed by a `changed:` line, for a readable failure."""
    tasks, current = [], None
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            current = line.split("]")[0] + "]"
        elif line.startswith("changed:") and current and current not in tasks:
            tasks.append(current)
    return tasks


def unit_command(unit: Path) -> tuple[list[str], dict[str, str], str | None]:
    """What systemd would run for `unit`: ExecStart, the environment (EnvironmentFile, then
    Environment) and User."""
    argv, env, user = [], {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}, None
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            argv = shlex.split(value)
        elif key == "EnvironmentFile":
            for entry in Path(value).read_text().splitlines():
                if entry.strip() and not entry.startswith("#"):
                    name, _, val = shlex.split(entry)[0].partition("=")
                    env[name] = val
        elif key == "Environment":
            name, _, val = value.partition("=")
            env[name] = val
        elif key == "User":
            user = value
    assert argv, f"{unit} has no ExecStart"
    return argv, env, user


def start_unit(unit: Path, log: Path) -> subprocess.Popen:
    argv, env, user = unit_command(unit)
    return subprocess.Popen(argv, env=env, user=user, group=user, extra_groups=[] if user else None,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # what systemd sends (KillMode=mixed: to the main process)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture
def deployment(pg_admin_url):
    """A prefix, TLS files, an inventory; afterwards the databases, the role, the
    proxy's account and the prefix are removed."""
    if os.geteuid() != 0:
        pytest.skip("the roles create service accounts and chown files: run as root")
    assert ANSIBLE_PLAYBOOK.exists(), f"{ANSIBLE_PLAYBOOK} is missing: ansible-core is a test dependency (make test installs it)"
    prefix = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="onsite-deploy-"))
    prefix.chmod(0o711)  # the proxy's account must reach the TLS files, as under /etc
    for directory in ("etc", "opt", "usr/local/sbin", "var/lib"):  # what / has before the roles run
        (prefix / directory).mkdir(mode=0o755, parents=True)
    suffix = uuid.uuid4().hex[:8]
    name = f"onsite_deploy_{suffix}"
    proxy_user = f"odeploy-{suffix}"  # not onsite-*: other test sessions remove such accounts they did not have
    tls = prefix / "tls"
    _, ca_key, ca_cert = write_ca(tls)
    write_server_cert(tls, ca_key, ca_cert, ("127.0.0.1",))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    pg = psycopg.conninfo.conninfo_to_dict(pg_admin_url)
    ports = {"public": free_port(), "hub": free_port(), "proxy_api": free_port()}
    variables = {
        "onsite_prefix": str(prefix),
        "onsite_build_dir": str(prefix / "build"),
        "onsite_source_version": commit,  # fixed, so a commit by someone else meanwhile changes nothing
        "onsite_compile_bytecode": False,  # the hub runs as root and writes what it imports
        "onsite_hub_systemd": False,
        "onsite_nftables_apply": False,
        "onsite_postgresql_external": True,
        "onsite_postgresql_host": pg.get("host", "127.0.0.1"),
        "onsite_postgresql_port": int(pg.get("port", 5432)),
        "onsite_postgresql_admin_host": pg.get("host", "127.0.0.1"),
        "onsite_postgresql_admin_user": pg.get("user", "postgres"),
        "onsite_postgresql_admin_os_user": "root",
        "onsite_postgresql_user": name,
        "onsite_postgresql_database": name,
        "onsite_postgresql_hub_database": f"{name}_hub",
        "onsite_hub_public_ip": "127.0.0.1",
        "onsite_hub_public_port": ports["public"],
        "onsite_hub_api_port": ports["hub"],
        "onsite_hub_proxy_api_port": ports["proxy_api"],
        "onsite_hub_proxy_user": proxy_user,
        "onsite_hub_route_check_interval_s": 2,
        "onsite_tls_cert": str(tls / "server.pem"),
        "onsite_tls_key": str(tls / "server.key"),
        "onsite_admin_facility": "Deployment test facility",
        "onsite_admin_terminals": ["127.0.0.1"],
        "onsite_nftables_terminal_networks": ["127.0.0.1/32"],
    }
    inventory = prefix / "inventory.yml"
    inventory.write_text(json.dumps({"onsite_hub": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}},
        "vars": variables}}))
    yield {"prefix": prefix, "inventory": inventory, "ports": ports, "ca": tls / "ca.pem", "proxy_user": proxy_user,
           "databases": [name, f"{name}_hub"], "role": name}
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for database in (name, f"{name}_hub"):
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')
    subprocess.run(["userdel", proxy_user], capture_output=True)
    shutil.rmtree(prefix, ignore_errors=True)


def test_roles_pass_ansible_lint_offline():
    """The production profile; the one rule skipped is in ansible/.ansible-lint, with why."""
    env = {**os.environ, "PATH": f"{ANSIBLE_PLAYBOOK.parent}:{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    result = subprocess.run([str(ANSIBLE_PLAYBOOK.parent / "ansible-lint"), "--offline", "--nocolor", "--profile",
                             "production", "site.yml"], cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_playbook_passes_the_syntax_check():
    result = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", "inventory.example.yml", "--syntax-check", "site.yml"],
                            cwd=ANSIBLE_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(1800)  # two playbook runs and a hub start: 2.6 min measured at load 7, several times that in a whole run
def test_deploy_start_log_in_and_redeploy_without_changes(deployment):
    prefix, inventory, ports = deployment["prefix"], deployment["inventory"], deployment["ports"]
    first = playbook(inventory, prefix / "first-run.log")
    assert first.returncode == 0, f"the first run failed:\n{tail(prefix / 'first-run.log', 80)}"
    assert recap(first)["changed"] > 0

    # What DESIGN.md's controls need of the files (hub_config/isolation.py sets the same modes).
    config, home = prefix / "etc/onsite", prefix / "var/lib/onsite"
    assert {name: oct(mode(home / name)) for name in ("", "datasets", "workspaces", "egress", "run")} == {
        "": "0o711", "datasets": "0o711", "workspaces": "0o711", "egress": "0o700", "run": "0o700"}
    secrets = [home / "run/jupyterhub_cookie_secret", home / "run/proxy_auth_token", home / "run/cli-api-token",
               config / "initial-admin-password", config / "postgresql-password", config / "pgpass",
               config / "onsite.env", config / "proxy.env", home / "onsite_config.py", home / "keys/release-signing.key"]
    for path in secrets:
        assert (mode(path), path.stat().st_uid) == (0o600, 0), path
    secret_values = {path: path.read_bytes() for path in secrets}
    assert mode(home / "keys") == 0o700  # the release signing key's folder: the review service's (root's) alone
    assert json.loads((home / "keys/release-signing-keys.json").read_text())["keys"][0]["revoked_at"] is None
    key = Path(deployment["prefix"] / "tls/server.key")
    assert (mode(key), key.stat().st_gid) == (0o640, pwd.getpwnam(deployment["proxy_user"]).pw_gid)
    site = (config / "onsite.env").read_text()
    assert 'ONSITE_PRODUCTION="1"' in site and "passfile=" in site and 'ONSITE_LANGUAGE="ja"' in site
    assert (config / "postgresql-password").read_text().strip() not in site  # only in the 0600 pgpass

    units = prefix / "etc/systemd/system"
    verify = subprocess.run(["systemd-analyze", "verify", *(str(units / unit) for unit in UNITS)],
                            capture_output=True, text=True)
    assert (verify.returncode, verify.stderr.strip()) == (0, ""), verify.stderr
    check = subprocess.run(["nft", "-c", "-f", str(config / "nftables.nft")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    # The proxy and the hub as their units run them.
    proxy = start_unit(units / "onsite-proxy.service", prefix / "proxy.log")
    hub = start_unit(units / "onsite-hub.service", prefix / "hub.log")
    url = f"https://127.0.0.1:{ports['public']}"

    def wait_for_login_page(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert proxy.poll() is None, f"the proxy exited:\n{tail(prefix / 'proxy.log')}"
            assert hub.poll() is None, f"the hub exited:\n{tail(prefix / 'hub.log')}"
            try:
                if requests.get(f"{url}/hub/login", verify=deployment["ca"], timeout=3).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"the hub did not answer:\n{tail(prefix / 'hub.log')}"
            time.sleep(0.5)

    try:
        wait_for_login_page(90)
        assert pwd.getpwuid(int(Path(f"/proc/{proxy.pid}").stat().st_uid)).pw_name == deployment["proxy_user"]
        # Plain HTTP on the public port gets nothing: the proxy speaks TLS only.
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{ports['public']}/hub/login", timeout=5)

        password = (config / "initial-admin-password").read_text().strip()
        wrong = log_in(url, deployment["ca"], "siteadmin", password + "x")
        assert wrong.status_code == 403 and login_error(wrong) == MESSAGES["login_invalid"]["ja"]
        session = requests.Session()
        right = log_in(url, deployment["ca"], "siteadmin", password, session)
        assert right.status_code == 302, login_error(right) or right.text[-2000:]
        admin_page = session.get(f"{url}/hub/admin", verify=deployment["ca"], timeout=10)
        assert admin_page.status_code == 200 and "siteadmin" in admin_page.text

        # A renewed certificate: the proxy restarts alone, the hub keeps running and puts its
        # routes back (onsite_hub_route_check_interval_s), the administrator stays logged in.
        stop(proxy)
        proxy = start_unit(units / "onsite-proxy.service", prefix / "proxy.log")
        wait_for_login_page(30)
        assert session.get(f"{url}/hub/admin", verify=deployment["ca"], timeout=10).status_code == 200
    finally:
        stop(hub)
        stop(proxy)
    assert hub.returncode == 0, tail(prefix / "hub.log")

    second = playbook(inventory, prefix / "second-run.log")
    assert second.returncode == 0, f"the second run failed:\n{tail(prefix / 'second-run.log', 80)}"
    assert recap(second)["changed"] == 0, f"the second run changed: {changed_tasks(second.stdout)}"
    assert {path: path.read_bytes() for path in secrets} == secret_values, "a secret was overwritten"


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"{proc.args[0]} exited:\n{tail(log)}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing answers on port {port}:\n{tail(log)}"
            time.sleep(0.2)


@pytest.mark.timeout(1200)
def test_local_directory_role_serves_the_first_administrator_and_redeploys_without_changes(deployment):
    """The optional slapd role alone (--tags slapd): a directory on loopback with the layout
    Onsite reads, the first administrator in it, the service account able to maintain groups."""
    from access_control.enums import Role
    from access_control.ldap import LdapDirectory, LdapSettings

    prefix, inventory = deployment["prefix"], deployment["inventory"]
    port = free_port()
    set_variables(inventory, onsite_slapd_enabled=True, onsite_slapd_port=port)
    first = playbook(inventory, prefix / "slapd-first-run.log", "--tags", "slapd")
    assert first.returncode == 0, f"the first run failed:\n{tail(prefix / 'slapd-first-run.log', 80)}"
    config = prefix / "etc/onsite"
    for secret in ("slapd-admin-password", "ldap-service-password", "initial-admin-password"):
        assert mode(config / secret) == 0o600, secret
    slapd_conf = prefix / "etc/onsite-slapd/slapd.conf"
    assert (mode(slapd_conf), slapd_conf.stat().st_uid, slapd_conf.stat().st_gid) == (0o640, 0, pwd.getpwnam("openldap").pw_gid)

    unit = prefix / "etc/systemd/system/onsite-slapd.service"
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert (verify.returncode, verify.stderr.strip()) == (0, ""), verify.stderr
    slapd = start_unit(unit, prefix / "slapd.log")
    try:
        wait_for_port(port, slapd, prefix / "slapd.log")
        # The settings the role hands to the onsite role (ONSITE_LDAP_* in onsite.env).
        directory = LdapDirectory(LdapSettings.load({
            "ONSITE_LDAP_URI": f"ldap://127.0.0.1:{port}",
            "ONSITE_LDAP_PEOPLE_BASE": "ou=people,dc=onsite,dc=local",
            "ONSITE_LDAP_GROUPS_BASE": "ou=groups,dc=onsite,dc=local",
            "ONSITE_LDAP_SERVICE_DN": "cn=onsite-service,ou=services,dc=onsite,dc=local",
            "ONSITE_LDAP_SERVICE_PASSWORD_FILE": str(config / "ldap-service-password"),
            "ONSITE_LDAP_TLS": "NONE"}))
        password = (config / "initial-admin-password").read_text().strip()
        admin_dn = "uid=siteadmin,ou=people,dc=onsite,dc=local"
        for attempt, accepted in ((password, True), (password + "x", False)):
            bind = ldap3.Connection(ldap3.Server(f"ldap://127.0.0.1:{port}"), admin_dn, attempt)
            assert bind.bind() is accepted
            bind.unbind()
        assert not directory.grant_role("siteadmin", Role.ADMINISTRATOR)  # a member already
        assert directory.grant_role("siteadmin", Role.REVIEWER)  # the service account writes groups
    finally:
        stop(slapd)

    second = playbook(inventory, prefix / "slapd-second-run.log", "--tags", "slapd")
    assert second.returncode == 0, f"the second run failed:\n{tail(prefix / 'slapd-second-run.log', 80)}"
    assert recap(second)["changed"] == 0, f"the second run changed: {changed_tasks(second.stdout)}"


def log_in(url: str, ca: Path, username: str, password: str, session: requests.Session | None = None) -> requests.Response:
    session = session or requests.Session()
    page = session.get(f"{url}/hub/login", verify=ca, timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    return session.post(f"{url}/hub/login?next=", data={"username": username, "password": password, "_xsrf": xsrf},
                        verify=ca, allow_redirects=False, timeout=30)
