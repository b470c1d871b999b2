# Lock-down of every Onsite single-user server (found through JUPYTER_CONFIG_PATH,
# set by hub_config.spawner.OnsiteSpawner; with Spawner.disable_user_config the
# researcher's own ~/.jupyter is not read). Defence in depth, not the boundary
# (see DESIGN.md); each switch is attacked in tests/security/test_browser_*.py.
# JupyterLab's download, export, open-in-new-tab, terminal and extension manager
# plugins are disabled and locked in labconfig/page_config.json beside this file.
from jupyterlab.commands import get_user_settings_dir, get_workspaces_dir

from singleuser.contents import project_folder
from singleuser.undumpable import make_undumpable

c = get_config()  # noqa: F821 (defined by the traitlets config loader)

# First, before any kernel of the researcher exists: the server's /proc/<pid>/environ
# (its Hub token), mem and maps become root's; no process of the account can ptrace it.
make_undumpable()

# The release outbox forwarder, the terminal guard, the intake folder and the session events
# (singleuser.serverext, which calls singleuser.lockdown.load).
c.ServerApp.jpserver_extensions.update({"singleuser.serverext": True})
# An extension that fails to load stops the server: jupyter_server's default logs a warning and serves on without
# it, i.e. without the terminal guard, the session events or the outbox forwarder if singleuser.serverext failed.
c.ServerApp.reraise_server_extension_failures = True

# No language servers: jupyter_lsp starts processes in the session beside the kernel, and its autodetection
# alone ran `npm prefix -g` at every server start (whose update check then spun in a session with no network).
c.ServerApp.jpserver_extensions.update({"jupyter_lsp": False})
# No terminals: a shell is a way around every notebook-level control.
c.ServerApp.terminals_enabled = False
# No /files/ download handler; /view/, /nbconvert/, ?download= and binary
# contents reads (except images) refused by the authorizer.
c.ContentsManager.files_handler_class = None
c.ContentsManager.allow_hidden = False
c.ServerApp.authorizer_class = "singleuser.authorizer.LockdownAuthorizer"
# Executed code is recorded server-side, before it reaches the kernel.
c.ServerApp.kernel_websocket_connection_class = "singleuser.kernel_websocket.AuditedKernelWebsocketConnection"
# Extensions cannot be installed from the browser.
c.LabApp.extension_manager = "readonly"
# Only the Onsite kernel (the venv's Python with Hub tokens stripped); any other
# kernel name is refused with 403 (singleuser.kernelspec.LockedKernelSpecManager, set by the spawner).
c.KernelSpecManager.allowed_kernelspecs = {"onsite"}
c.MultiKernelManager.default_kernel_name = "onsite"
# Uploads: only into intake/, at most 50 MB a file; the HTTP body limit sits above
# that plus base64 overhead (JupyterLab sends large files in 1 MB chunks anyway).
c.ServerApp.contents_manager_class = "singleuser.contents.LockdownContentsManager"
c.Lockdown.intake_dir = "intake"
c.Lockdown.intake_max_bytes = 50 * 1024 * 1024
c.ServerApp.max_body_size = 64 * 1024 * 1024
# The facility terminal is offline: no news feed and no update check (JupyterLab would ask
# whether to "fetch official Jupyter news"); the notification settings say the same in labconfig.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# The file browser, and so the launcher, starts in the project's workspace folder (docs/how-to/researcher.md).
c.ContentsManager.preferred_dir = project_folder()
# JupyterLab's own defaults for these are computed from $HOME when jupyterlab.labapp is imported; a server
# forked from the pre-imported one (hub_config.server_fork) imported it with the fork server's environment,
# so they are computed here again, from the session's (the same values an exec'd server's import gives).
c.LabApp.user_settings_dir = get_user_settings_dir()
c.LabApp.workspaces_dir = get_workspaces_dir()
