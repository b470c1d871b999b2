"""Configuration files read by every Onsite single-user server (through JUPYTER_CONFIG_PATH); not imported."""
