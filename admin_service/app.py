"""The admin pages: a tornado application run as the JupyterHub service `onsite-admin`.

Administrators, and facility managers on the facility pages: the Hub identifies
the person (Hub OAuth), and the policy store must give them Role.ADMINISTRATOR
or Role.FACILITY_MANAGER (and not a disabled account; `admin_service.handlers`);
anyone else gets 403 and the refusal is an audit event. Every form is XSRF-protected
and calls the same `access_control.policy` function as `onsite admin …`, with
its fields read by the same parsers (`access_control.forms`), in the same
transaction (`access_control.admin.change`: the ledger lock first). Bad input
re-shows the page with the refusal, in the page's language, next to the form;
nothing is changed.

URL paths (under the service prefix, e.g. /services/onsite-admin/):

    GET  ./                                   → ./people (a facility manager: ./facilities)
    GET  ./people          POST ./people      list; add
    GET  ./people/<name>                      one person
    POST ./people/<name>/(disable|enable|unlock|password)
    POST ./people/<name>/roles                grant or revoke (op=grant|revoke, role)
    GET  ./projects        POST ./projects    list; add
    GET  ./projects/<id>   POST ./projects/<id>   one project; change
    POST ./projects/<id>/members              add or remove (op=add|remove, username)
    GET  ./datasets        POST ./grants      datasets and grants; add a grant
    POST ./grants/<n>/revoke
    GET  ./facilities, ./terminals, ./bookings, ./entries, ./sessions and their forms   admin_service.facility_pages
                                              (facility managers too, within their facilities)
    GET  ./accreditations  POST ./accreditations   list; add
    POST ./accreditations/<n>/revoke
    GET  ./log/head                           the log's API for witnesses (JSON, admin_service.log_api): newest signed head
    GET  ./log/consistency?old=N&new=M        consistency proof between the trees of N and M events
    GET  ./log/inclusion?seq=N                inclusion proof of event N in the newest head
    POST ./log/cosignatures                   a witness's cosignature of a head (checked, then stored)
    GET  ./operations, ./operations/<n>, ./operations.json, ./usage, ./usage.csv   admin_service.operations
    GET  ./oauth_callback                     Hub OAuth
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from jupyterhub.services.auth import HubOAuthCallbackHandler
from sqlalchemy import select
from sqlalchemy.orm import Session
from tornado import web

from access_control import forms, policy
from access_control.accounts import account_state
from access_control.enums import Outcome, Role
from access_control.errors import Done, Label, PolicyError
from access_control.hub_api import HubClient
from access_control.operations import OperationsView
from access_control.models import MAX_ADDRESS, MAX_EMAIL, MAX_NAME, MAX_PURPOSE, MAX_TITLE, Dataset, ProjectStatus
from admin_service import facility_pages
from admin_service.handlers import SERVICE_NAME as SERVICE_NAME, AdminHandler, Performed  # SERVICE_NAME: for __main__
from admin_service.operations import ROUTES as OPERATIONS_ROUTES, UsageKeeper
from admin_service.log_api import ROUTES as LOG_API_ROUTES
from disclosure_review.sdc.rules import DEFAULT_PRESET, preset_names
from onsite_base.settings import Settings
from onsite_base.web.service import Identity, application, normal_prefix, templates

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
LIMITS = {"name": MAX_NAME, "title": MAX_TITLE, "purpose": MAX_PURPOSE, "address": MAX_ADDRESS, "email": MAX_EMAIL}
"""The longest text each kind of field takes (as policy checks it): the forms' maxlength."""

def enum_options(enum_class: type, key_prefix: str, t: Callable[..., str]) -> list[tuple[str, str]]:
    """(value, translated label) of every member, for a <select>."""
    return [(member.value, t(key_prefix + member.value)) for member in enum_class]


def make_jinja() -> jinja2.Environment:
    env = templates(HERE / "templates", extensions=["jinja2.ext.do"])
    env.globals.update(Role=Role, ProjectStatus=ProjectStatus, Outcome=Outcome, enum_options=enum_options,
                       format_hours=forms.format_hours, limits=LIMITS, presets=[(name, name) for name in preset_names()])
    return env


# ---------------------------------------------------------------- people


def person_row(session: Session, person) -> dict[str, Any]:
    return {
        "person": person,
        "roles": sorted(person.role_set, key=lambda r: r.value),
        "state": account_state(person).value.lower(),
        "projects": [p.id for p in policy.projects_of(session, person.username)],
    }


class HomeHandler(AdminHandler):
    for_managers = True

    @web.authenticated
    def get(self) -> None:
        self.redirect(self.prefix + ("people" if self.scope is not None and self.scope.everything else "facilities"))


class PeoplePage(AdminHandler):
    template = "people.html"
    form = "person-add"

    def context(self, session: Session, *args: str) -> dict[str, Any]:
        return {"people": [person_row(session, p) for p in policy.list_people(session)]}

    def perform(self, session: Session, *args: str) -> Performed:
        roles = [forms.parse_role(r) for r in self.get_body_arguments("role")]
        person = policy.add_person(
            session,
            username=self.arg("username"),
            display_name=self.arg("display_name"),
            email=self.arg("email"),
            roles=roles,
            password=self.arg("password") or None,
            actor=self.actor,
            directory=self.directory(),
        )
        return f"people/{person.username}", Done("done_person_added", name=person.username)


class PersonPage(AdminHandler):
    template = "person.html"

    def context(self, session: Session, username: str, *args: str) -> dict[str, Any]:
        try:
            return person_row(session, policy.require_person(session, username))
        except PolicyError as e:
            raise web.HTTPError(404, self.refusal(e)) from None

    def page_args(self, username: str, *args: str) -> tuple[str, ...]:
        return (username,)


class PersonAccountForm(PersonPage):
    form = "person-account"

    def perform(self, session: Session, username: str, operation: str) -> Performed:
        if operation == "unlock":
            policy.unlock_person(session, username, actor=self.actor)
        elif operation == "password":
            policy.set_password(session, username, self.arg("password"), actor=self.actor)
        else:
            policy.set_disabled(session, username, operation == "disable", actor=self.actor)
        name = policy.require_person(session, username).username
        key = {"unlock": "done_person_unlocked", "password": "done_password_set", "disable": "done_person_disabled"}.get(
            operation, "done_person_enabled")
        return f"people/{name}", Done(key, name=name)


class PersonRoleForm(PersonPage):
    form = "person-roles"

    def perform(self, session: Session, username: str) -> Performed:
        role = forms.parse_role(self.arg("role"))
        revoke = self.arg("op") == "revoke"
        if revoke:
            policy.revoke_role(session, username, role, actor=self.actor, directory=self.directory())
        else:
            policy.grant_role(session, username, role, actor=self.actor, directory=self.directory())
        name = policy.require_person(session, username).username
        return f"people/{name}", Done("done_role_revoked" if revoke else "done_role_granted", name=name, role=Label(f"role_{role.value}"))


# ---------------------------------------------------------------- projects and members


class ProjectsPage(AdminHandler):
    template = "projects.html"
    form = "project-add"

    def context(self, session: Session, *args: str) -> dict[str, Any]:
        return {"projects": policy.list_projects(session)}

    def perform(self, session: Session, *args: str) -> Performed:
        project = policy.add_project(
            session,
            project_id=self.arg("project_id").strip(),
            title=self.arg("title"),
            purpose=self.arg("purpose"),
            legal_basis=self.arg("legal_basis"),
            start_date=forms.parse_date(self.arg("start_date"), "field_start_date", required=True),
            end_date=forms.parse_date(self.arg("end_date"), "field_end_date", required=True),
            preset=forms.parse_preset(self.arg("preset") or DEFAULT_PRESET, preset_names()),
            presets=preset_names(),
            actor=self.actor,
        )
        return f"projects/{project.id}", Done("done_project_added", id=project.id, start=project.start_date, end=project.end_date)


class ProjectPage(AdminHandler):
    template = "project.html"
    form = "project-change"

    def context(self, session: Session, project_id: str, *args: str) -> dict[str, Any]:
        try:
            project = policy.require_project(session, project_id)
        except PolicyError as e:
            raise web.HTTPError(404, self.refusal(e)) from None
        return {
            "project": project,
            "members": policy.members_of(session, project_id),
            "grants": policy.list_grants(session, project_id),
        }

    def page_args(self, project_id: str, *args: str) -> tuple[str, ...]:
        return (project_id,)

    def perform(self, session: Session, project_id: str) -> Performed:
        policy.change_project(
            session,
            project_id,
            title=self.changed("title"),
            purpose=self.changed("purpose"),
            legal_basis=self.changed("legal_basis"),
            start_date=forms.parse_date(self.arg("start_date"), "field_start_date"),
            end_date=forms.parse_date(self.arg("end_date"), "field_end_date"),
            status=forms.parse_project_status(self.arg("status")) if self.arg("status") else None,
            preset=forms.parse_preset(self.arg("preset"), preset_names()) if self.arg("preset") else None,
            presets=preset_names(),
            actor=self.actor,
        )
        return f"projects/{project_id}", Done("done_project_changed", id=project_id)


class MemberForm(ProjectPage):
    form = "members"

    def perform(self, session: Session, project_id: str) -> Performed:
        remove = self.arg("op") == "remove"
        if remove:
            policy.remove_member(session, project_id, self.arg("username"), actor=self.actor, directory=self.directory())
        else:
            policy.add_member(session, project_id, self.arg("username"), actor=self.actor, directory=self.directory())
        name = policy.require_person(session, self.arg("username")).username
        return f"projects/{project_id}", Done("done_member_removed" if remove else "done_member_added", name=name, id=project_id)


# ---------------------------------------------------------------- datasets and grants


class DatasetsPage(AdminHandler):
    template = "datasets.html"
    form = "grant-add"

    def context(self, session: Session, *args: str) -> dict[str, Any]:
        return {
            "datasets": list(session.scalars(select(Dataset).order_by(Dataset.id))),
            "grants": policy.list_grants(session),
            "projects": policy.list_projects(session),
        }

    def perform(self, session: Session, *args: str) -> Performed:
        grant = policy.add_grant(
            session,
            project_id=self.arg("project_id"),
            dataset_id=self.arg("dataset_id"),
            valid_from=forms.parse_date(self.arg("valid_from"), "field_valid_from"),
            valid_until=forms.parse_date(self.arg("valid_until"), "field_valid_until"),
            actor=self.actor,
        )
        return "datasets", Done("done_grant_added", grant=grant.id, dataset=grant.dataset_id, project=grant.project_id,
                                start=grant.valid_from, end=grant.valid_until)


class GrantRevokeForm(DatasetsPage):
    form = "grants"

    def perform(self, session: Session, grant_id: str) -> Performed:
        grant = policy.revoke_grant(session, forms.parse_row_number(grant_id, "grant"), actor=self.actor)
        return "datasets", Done("done_grant_revoked", grant=grant.id, dataset=grant.dataset_id, project=grant.project_id)

    def page_args(self, *args: str) -> tuple[str, ...]:
        return ()


# ---------------------------------------------------------------- accreditations (facilities, terminals, bookings, the entry
# log and live sessions: admin_service.facility_pages)


class AccreditationsPage(AdminHandler):
    template = "accreditations.html"
    form = "accreditation-add"

    def context(self, session: Session, *args: str) -> dict[str, Any]:
        return {"accreditations": policy.list_accreditations(session), "people": policy.list_people(session)}

    def perform(self, session: Session, *args: str) -> Performed:
        accreditation = policy.add_accreditation(
            session, username=self.arg("username"), kind=self.arg("kind"),
            issued=forms.parse_date(self.arg("issued"), "field_issued"),
            expiry=forms.parse_date(self.arg("expiry"), "field_expiry", required=True),
            actor=self.actor,
        )
        return "accreditations", Done("done_accreditation_added", id=accreditation.id, kind=accreditation.kind,
                                      name=accreditation.person.username, start=accreditation.issued, end=accreditation.expiry)


class AccreditationRevokeForm(AccreditationsPage):
    form = "accreditations"

    def perform(self, session: Session, *args: str) -> Performed:
        accreditation = policy.revoke_accreditation(session, forms.parse_row_number(args[0], "accreditation"), actor=self.actor)
        return "accreditations", Done("done_accreditation_revoked", id=accreditation.id, kind=accreditation.kind,
                                      name=accreditation.person.username)

    def page_args(self, *args: str) -> tuple[str, ...]:
        return ()


def make_app(
    settings: Settings,
    *,
    prefix: str = "/",
    hub_client: HubClient | None = None,
    test_identity: Identity | None = None,
    cookie_secret: bytes | None = None,
) -> web.Application:
    """The application. `hub_client` defaults to the Hub API of this service's environment
    (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN); `test_identity` replaces the Hub in tests only."""
    prefix = normal_prefix(prefix)
    if hub_client is None:
        hub_client = HubClient(
            os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"), os.environ.get("JUPYTERHUB_API_TOKEN", "")
        )
    p = prefix
    name = r"([^/]+)"
    routes = [
        (rf"{p}", HomeHandler),
        (rf"{p}people", PeoplePage),
        (rf"{p}people/{name}", PersonPage),
        (rf"{p}people/{name}/(disable|enable|unlock|password)", PersonAccountForm),
        (rf"{p}people/{name}/roles", PersonRoleForm),
        (rf"{p}projects", ProjectsPage),
        (rf"{p}projects/{name}", ProjectPage),
        (rf"{p}projects/{name}/members", MemberForm),
        (rf"{p}datasets", DatasetsPage),
        (rf"{p}grants", DatasetsPage),
        (rf"{p}grants/(\d+)/revoke", GrantRevokeForm),
        *facility_pages.routes(p),
        (rf"{p}accreditations", AccreditationsPage),
        (rf"{p}accreditations/(\d+)/revoke", AccreditationRevokeForm),
        *((p + path, handler) for path, handler in OPERATIONS_ROUTES),
        *((p + path, handler) for path, handler in LOG_API_ROUTES),
        (rf"{p}oauth_callback", HubOAuthCallbackHandler),
    ]
    operations = OperationsView.load()
    app = application(routes, settings, prefix, HERE, jinja=make_jinja(), cookie_secret=cookie_secret,
                      test_identity=test_identity, hub_client=hub_client, operations=operations)
    # Started by the service's main (and by the first operations page): an app made only to answer other pages,
    # as tests make many, runs no thread.
    app.settings["usage_keeper"] = UsageKeeper(app.settings["session_factory"], operations.catch_up_seconds)
    return app
