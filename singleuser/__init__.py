"""The single-user server: what runs as the researcher's own account around the
kernel. The lock-down, one module per control (`authorizer`, `contents`,
`terminal_guard`, `kernel_websocket`, `events`, `undumpable`; `lockdown` wires
them in), the outbox forwarder (`serverext`), the kernelspec and the kernel's
namespaces; the Jupyter configuration every server reads is in `jupyter_config/`.

Runs with the researcher's privileges, so it never imports the hub's
authenticator, the policy store or the workflow store (the import contracts in
pyproject.toml, `lint-imports`)."""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "jupyter_config"
"""Found by every server through JUPYTER_CONFIG_PATH (set by the hub's spawner)."""
