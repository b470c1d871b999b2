"""Start-up of the `onsite` command vs `jupyterhub --help`, each a fresh interpreter of the same venv.

Operators run `onsite admin …` one command at a time, and the administrator guide's test runs about
sixty of them, so what a command costs before it does anything counts. The peer is JupyterHub's own
command line, the program an operator of this hub otherwise types.

- `cli_help`: `onsite --help` vs `jupyterhub --help`.
- `cli_person_list`: `onsite admin person list` on a store made by `onsite init` holding PEOPLE people
  (settings read, store checked current, one read transaction) vs the same `jupyterhub --help`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench import Case, Context

PEOPLE = 50
BIN = Path(sys.executable).parent


def run(*command: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cases(ctx: Context) -> list[Case]:
    onsite = [sys.executable, "-m", "onsite.cli"]
    env = {name: value for name, value in os.environ.items() if not name.startswith("ONSITE_")}
    env["ONSITE_HOME"] = str(ctx.tmp_dir / "cli-home")
    people = ctx.tmp_dir / "people.csv"
    people.write_text("username,display_name\n" + "".join(f"person{i:03d},Person {i}\n" for i in range(PEOPLE)))
    run(*onsite, "init", env=env)
    run(*onsite, "admin", "person", "import", str(people), env=env)

    def peer() -> None:
        run(str(BIN / "jupyterhub"), "--help")

    return [
        Case("cli_help", lambda: run(*onsite, "--help", env=env), "jupyterhub --help", peer, note="fresh interpreter each run"),
        Case("cli_person_list", lambda: run(*onsite, "admin", "person", "list", env=env), "jupyterhub --help", peer,
             note=f"SQLite store, {PEOPLE} people"),
    ]
