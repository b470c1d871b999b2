"""JupyterHub wiring of Onsite: the config builder (`config`), the authenticator with entry
decisions, the spawner with the session manifest, and the single-user server extension
(release outbox forwarder). See docs/how-to/operator.md."""
