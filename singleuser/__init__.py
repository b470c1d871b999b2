"""The single-user server: what runs as the researcher's own account around the
kernel. Lock-down (authorizer, contents rules, terminal guard, session events),
the outbox forwarder, the kernelspec and the kernel's namespaces; the Jupyter
configuration every server reads is in `jupyter_config/`.

Runs with the researcher's privileges, so it never imports the hub's
authenticator, the policy store or the workflow store (tests/test_layers.py)."""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "jupyter_config"
"""Found by every server through JUPYTER_CONFIG_PATH (set by the hub's spawner)."""
