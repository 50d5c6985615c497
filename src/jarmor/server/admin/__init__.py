"""The administrator dashboard under ``/admin``: server-rendered pages behind an administrator sign-in that is
separate from end-user sign-in (``jarmor admins add``).

``site`` is the frame (view registration, sessions, CSRF, layout); the modules imported below register
their pages with it. Add a page by writing a module with ``@admin_view`` / ``@client_section`` functions and
importing it here.
"""

from __future__ import annotations

from . import (  # noqa: F401  (register the pages)
    flows,  # flow records and the report (governance part 1)
    views,
)
from .site import (
    AdminContext,
    AdminView,
    ClientSection,
    admin_page,
    admin_routes,
    admin_view,
    client_section,
    notice_page,
)

__all__ = [
    "AdminContext",
    "AdminView",
    "ClientSection",
    "admin_page",
    "admin_routes",
    "admin_view",
    "client_section",
    "notice_page",
]
