# Lock-down of every Onsite single-user server (found through JUPYTER_CONFIG_PATH,
# set by hub_config.spawner.OnsiteSpawner). Cheap settings that need no OS
# accounts; they are defence in depth, not the boundary (see DESIGN.md and
# issue 6, which attacks and deepens them).
c = get_config()  # noqa: F821 (defined by the traitlets config loader)

# The release outbox forwarder (hub_config.serverext).
c.ServerApp.jpserver_extensions.update({"hub_config.serverext": True})

# No terminals: a shell is a way around every notebook-level control.
c.ServerApp.terminals_enabled = False
# No /files/ download handler.
c.ContentsManager.files_handler_class = None
c.ContentsManager.allow_hidden = False
# Extensions cannot be installed from the browser.
c.LabApp.extension_manager = "readonly"
# Only the Onsite kernel (the venv's Python with Hub tokens stripped).
c.KernelSpecManager.allowed_kernelspecs = {"onsite"}
c.MultiKernelManager.default_kernel_name = "onsite"
c.ServerApp.max_body_size = 64 * 1024 * 1024
