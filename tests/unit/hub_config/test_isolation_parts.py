"""The isolation parts on their own: limits, accounts, dataset groups, nftables, kernelspecs, sandbox."""
from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from jupyter_client.kernelspec import NoSuchKernel

from hub_config import isolation, netfilter
from hub_config.isolation import SessionLimits
from singleuser.kernel_sandbox import kernel_environment
from singleuser.kernelspec import LockedKernelSpecManager, kernelspec_dir, write_kernelspec
from onsite_base.settings import Settings

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_limits_validate_and_combine():
    with pytest.raises(ValueError, match="unknown session limit"):
        SessionLimits.from_dict({"memroy_mb": 1})
    with pytest.raises(ValueError, match="positive"):
        SessionLimits.from_dict({"memory_mb": 0})
    a = SessionLimits.from_dict({"memory_mb": 1000, "cpu_seconds": 60, "nice": 10})
    b = SessionLimits.from_dict({"memory_mb": 4000, "cpu_seconds": 30, "nice": 3})
    assert a.most_generous(b) == SessionLimits(memory_mb=4000, processes=256, file_size_mb=4096, cpu_seconds=60, nice=3)
    assert a.most_generous(SessionLimits()).cpu_seconds == 0  # one project without a CPU limit: none


def test_long_names_are_shortened_stably():
    name = isolation.account_name("onsite-", "a" * 32)
    assert len(name) == isolation.MAX_NAME and name == isolation.account_name("onsite-", "a" * 32)
    assert isolation.account_name("onsite-", "a" * 31 + "b") != name


def test_kernel_environment_drops_hub_secrets():
    env = kernel_environment({"JUPYTERHUB_API_TOKEN": "t", "JPY_API_TOKEN": "t", "JUPYTERHUB_CLIENT_ID": "c",
                              "ONSITE_REVIEW_URL": "u", "ONSITE_DB_URL": "d", "ONSITE_SESSION": "s", "PATH": "/bin"})
    assert env == {"ONSITE_SESSION": "s", "PATH": "/bin"}


def test_locked_kernelspec_manager_knows_one_kernel(tmp_path):
    settings = Settings(home=tmp_path, db_url="sqlite://")
    data_dir = write_kernelspec(settings)
    manager = LockedKernelSpecManager(spec_dir=str(kernelspec_dir(data_dir)))
    assert list(manager.find_kernel_specs()) == ["onsite"] == list(manager.get_all_specs())
    assert "singleuser.kernel_sandbox" in manager.get_kernel_spec("onsite").argv
    for name in ("python3", "../onsite", "evil"):
        with pytest.raises(NoSuchKernel):
            manager.get_kernel_spec(name)
    spec = json.loads((kernelspec_dir(data_dir) / "kernel.json").read_text())
    assert spec["argv"][spec["argv"].index("-Im") + 1] == "singleuser.kernel_sandbox"


def test_sandboxed_process_has_no_network(tmp_path):
    code = ("import socket\ns = socket.socket()\ntry:\n    s.connect(('127.0.0.1', 5432))\n    print('connected')\n"
            "except OSError as e:\n    print(e.errno)")
    result = subprocess.run([sys.executable, "-Im", "singleuser.kernel_sandbox", "--", sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.stdout.strip() == "101", result.stderr  # ENETUNREACH


def test_sandbox_module_cannot_be_shadowed_from_the_working_directory(tmp_path):
    (tmp_path / "hub_config").mkdir()
    (tmp_path / "hub_config" / "__init__.py").write_text("")
    (tmp_path / "hub_config" / "kernel_sandbox.py").write_text("print('shadowed')")
    result = subprocess.run([sys.executable, "-Im", "singleuser.kernel_sandbox", "--", sys.executable, "-c", "print('kernel')"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.stdout.strip() == "kernel"


def test_ruleset_allows_only_the_listed_endpoints():
    rules = netfilter.session_ruleset(200999, [netfilter.Endpoint("127.0.0.1", 8081)])
    assert "meta skuid 200999 ip daddr 127.0.0.1 tcp dport 8081 accept" in rules
    assert rules.rstrip().splitlines()[-3].strip() == "meta skuid 200999 reject with icmpx admin-prohibited"


@root_only
def test_session_rules_are_applied_and_removed():
    uid = 200998
    netfilter.apply_session_rules(uid, [netfilter.Endpoint("127.0.0.1", 1)])
    try:
        assert netfilter.table_name(uid) in netfilter.session_tables()
        netfilter.apply_session_rules(uid, [])  # replacing is atomic and idempotent
        assert netfilter.session_tables().count(netfilter.table_name(uid)) == 1
    finally:
        netfilter.remove_session_rules(uid)
    assert netfilter.table_name(uid) not in netfilter.session_tables()


@root_only
def test_a_hub_at_exit_removes_its_own_leftover_rules_not_another_hubs(tmp_path):
    """Two hubs on one machine (e.g. parallel test runs): the exit of one leaves the other's sessions confined."""
    os.chmod(tmp_path, 0o711)
    mine = isolation.ensure_account("someone", 11, prefix="onsite-ua-", uid_base=299000, home=tmp_path / "a")
    theirs = isolation.ensure_account("someone", 12, prefix="onsite-ub-", uid_base=299000, home=tmp_path / "b")
    try:
        for account in (mine, theirs):
            netfilter.apply_session_rules(account.uid, [])
        netfilter.remove_leftover_session_rules("onsite-ua-")
        tables = netfilter.session_tables()
        assert netfilter.table_name(mine.uid) not in tables and netfilter.table_name(theirs.uid) in tables
    finally:
        for account in (mine, theirs):
            netfilter.remove_session_rules(account.uid)
            isolation.remove_account(account.name)


@root_only
def test_account_and_dataset_group(tmp_path):
    prefix = "onsite-ut-"
    os.chmod(tmp_path, 0o711)
    account = isolation.ensure_account("someone", 7, prefix=prefix, uid_base=299000, home=tmp_path / "home")
    gid = isolation.ensure_dataset_group("ds_unit", prefix="onsite-ut-ds-")
    try:
        assert (account.name, account.uid, account.gid) == ("onsite-ut-someone", 299007, 299007)
        assert isolation.ensure_account("someone", 7, prefix=prefix, uid_base=299000, home=tmp_path / "home") == account
        with isolation._account_lock:  # another spawn's useradd under way: an existing account does not wait for it
            found = ThreadPoolExecutor(1).submit(
                lambda: (isolation.ensure_account("someone", 7, prefix=prefix, uid_base=299000, home=tmp_path / "home"),
                         isolation.ensure_dataset_group("ds_unit", prefix="onsite-ut-ds-")))
            assert found.result(timeout=10) == (account, gid)
        assert pwd.getpwnam(account.name).pw_shell == isolation.NOLOGIN_SHELL
        data = tmp_path / "ds_unit.duckdb"
        data.write_text("x")
        isolation.secure_dataset_file(data, gid)
        assert (data.stat().st_uid, data.stat().st_gid, data.stat().st_mode & 0o777) == (0, gid, 0o640)
        home = tmp_path / "home"
        isolation.prepare_home(home, account, [home / "p1"])
        assert (home / "p1").stat().st_uid == account.uid and (home / "p1").stat().st_mode & 0o777 == 0o700
        (home / "p2").symlink_to("/etc")
        with pytest.raises(isolation.IsolationError, match="symbolic link"):
            isolation.prepare_home(home, account, [home / "p2"])
        with pytest.raises(isolation.IsolationError, match="not a session account"):
            isolation.kill_account_processes(0)
    finally:
        isolation.remove_account(account.name)
        isolation.remove_group("onsite-ut-ds-ds_unit")
    with pytest.raises(KeyError):
        pwd.getpwnam(account.name)
