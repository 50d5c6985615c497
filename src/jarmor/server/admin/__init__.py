"""The administrator dashboard under ``/admin``: server-rendered pages behind an administrator sign-in that is
separate from end-user sign-in (``jarmor admins add``).

``site`` is the frame (view and section types, sessions, CSRF, layout); ``DASHBOARD`` below is the explicit
list of every page jarmor serves there, from the ``VIEWS`` / ``SECTIONS`` each page module declares. Add a
page by writing a module with its tuples and listing them here (or pass your own ``Dashboard`` to
``admin_routes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from . import flows, views
from .site import (
    AdminContext,
    AdminView,
    ClientSection,
    Dashboard,
    admin_page,
    dashboard_routes,
    notice_page,
)

if TYPE_CHECKING:
    from ..app import JarmorServer

DASHBOARD = Dashboard(
    views=(
        *views.VIEWS,  # clients, a client's page, offboarding, grant revocation, audit log, JSON inventory
        *flows.VIEWS,  # flow records, chain verification, the report
    ),
    sections=(*flows.SECTIONS,),  # a client's recent flows
)


def admin_routes(server: JarmorServer, dashboard: Dashboard = DASHBOARD) -> list[Route]:
    """Starlette routes for the administrator sign-in and every page of ``dashboard``."""
    return dashboard_routes(server, dashboard)


__all__ = [
    "DASHBOARD",
    "AdminContext",
    "AdminView",
    "ClientSection",
    "Dashboard",
    "admin_page",
    "admin_routes",
    "notice_page",
]
