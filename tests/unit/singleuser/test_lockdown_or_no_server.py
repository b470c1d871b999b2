"""The lock-down loads whole or the server does not run: a real Jupyter server with the single-user config
(singleuser/jupyter_config) whose `singleuser.serverext` fails to load — here a wrong `SessionEvents` value, as a
site's `OnsiteSpawner.args` could carry — exits naming the setting, instead of serving on without the extension
(jupyter_server's default: a warning, then no terminal guard, session events or outbox forwarder)."""
from __future__ import annotations

import os
import subprocess
import sys

from hub_config.ports import free_port
from singleuser import CONFIG_DIR


def test_a_server_whose_lockdown_fails_to_load_exits(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "JUPYTER_CONFIG_PATH": str(CONFIG_DIR),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "user-config"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           # so that the extension sets up session events, which read the setting
           "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api", "JUPYTERHUB_API_TOKEN": "token"}
    command = [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={free_port('127.0.0.1')}",
               "--port-retries=0", f"--ServerApp.root_dir={tmp_path}", "--SessionEvents.record_timeout_s=0"]
    try:
        server = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the server ran on without its lock-down:\n{e.stderr}") from None
    assert server.returncode != 0
    assert "SessionEvents.record_timeout_s must be above 0" in server.stderr, server.stderr[-3000:]
    assert "is running at" not in server.stderr
