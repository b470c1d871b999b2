"""The administrators' web pages: a JupyterHub service (`onsite-admin`), administrators only.

The same management as `onsite admin …` (every form calls the same
`access_control.policy` function in one transaction), the entry log, and who
is in which session now (from the Hub's REST API).
"""
