"""The hub's services, roles and token scopes: who may reach what through JupyterHub.

Hub roles mirror the policy store's roles and are synced from it at every
log-in (the authenticator manages them, `HUB_ROLES`). None holds `self`, which
would let a person create API tokens and share servers (issue 6 attacks both).
"""
from __future__ import annotations

from access_control.enums import Role

REVIEW_SERVICE = "onsite-review"
ADMIN_SERVICE = "onsite-admin"
IDLE_CULLER_SERVICE = "onsite-idle-culler"
# `onsite admin sessions` on the hub's machine: a token-only service (no url, no
# command) whose token and the hub API address are files in the runtime directory.
CLI_SERVICE = "onsite-cli"

RESEARCHER_ROLE = {
    "name": "onsite-researcher",
    "description": "Onsite researcher: own server, the review service",
    "scopes": [
        "read:users!user",
        "users:activity!user",
        "servers!user",
        "access:servers!user",
        f"access:services!service={REVIEW_SERVICE}",
    ],
}
REVIEWER_ROLE = {
    "name": "onsite-reviewer",
    "description": "Onsite reviewer (output checker): the review service only, no server",
    "scopes": ["read:users!user", f"access:services!service={REVIEW_SERVICE}"],
}
# Administrators manage the hub (see users, stop servers) but cannot open a
# researcher's server: no `access:servers`, no `tokens`.
HUB_MANAGER_ROLE = {
    "name": "onsite-hub-manager",
    "description": "Onsite administrator: hub management without access to researchers' servers",
    "scopes": [
        "admin-ui",
        "list:users",
        "read:users",
        "read:servers",
        "servers",
        "list:services",
        "read:services",
        "read:hub",
        f"access:services!service={REVIEW_SERVICE}",
        f"access:services!service={ADMIN_SERVICE}",  # the admin pages: only facility managers hold this scope too
    ],
}
# A facility manager: the admin pages only, which show them their facilities and nothing else.
FACILITY_MANAGER_ROLE = {
    "name": "onsite-facility-manager",
    "description": "Onsite facility manager: the admin pages of their facilities, no server",
    "scopes": ["read:users!user", f"access:services!service={ADMIN_SERVICE}"],
}
HUB_ROLES = {Role.RESEARCHER: RESEARCHER_ROLE, Role.REVIEWER: REVIEWER_ROLE, Role.ADMINISTRATOR: HUB_MANAGER_ROLE,
             Role.FACILITY_MANAGER: FACILITY_MANAGER_ROLE}
"""The hub role of each policy-store role."""

# The admin service's own token: see who is in a session and end it (least
# privilege: without read:servers the hub lists nobody's server).
ADMIN_SERVICE_ROLE = {
    "name": "onsite-admin-service",
    "description": "The admin service's own token: see and stop sessions",
    "scopes": ["list:users", "read:servers", "delete:servers"],
    "services": [ADMIN_SERVICE],
}
# The review service's own token: whether a researcher's session is running, so that
# unreleased cells are shown only at the terminal of a live session (nothing else).
REVIEW_SERVICE_ROLE = {
    "name": "onsite-review-service",
    "description": "The review service's own token: see whether a researcher's session is running",
    "scopes": ["read:servers"],
    "services": [REVIEW_SERVICE],
}
CLI_SERVICE_ROLE = {
    "name": "onsite-cli-service",
    "description": "`onsite admin sessions`: see and stop sessions",
    "scopes": ["list:users", "read:servers", "delete:servers"],
    "services": [CLI_SERVICE],
}
# The culler stops servers; it reads activity but holds no access to any server.
IDLE_CULLER_ROLE = {
    "name": "onsite-idle-culler",
    "description": "Stops idle servers and servers past the maximum session length",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": [IDLE_CULLER_SERVICE],
}
# JupyterHub's default role of every user: nothing beyond reading oneself, so
# an account the authenticator did not give an Onsite role can do nothing.
USER_SCOPES = ["read:users!user"]
# The single-user server's own token: activity, its own server, and the review
# service (the release outbox forwarder posts with it).
SERVER_TOKEN_SCOPES = [
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={REVIEW_SERVICE}",
]
