"""The dashboard: server-rendered pages (``templates/web``) over the same read views as the API.

The pages live in :mod:`workflow.web.pages`, one small router each (tasks and the OPDC queue,
an agreement, the matrix, the outbox, the scores, the diagram) sharing
:mod:`workflow.web.pages.common` (the signed-in user from :mod:`workflow.web.session`,
rendering, paging, flash messages). Sign-in and sign-out are :mod:`workflow.web.signin`'s.
Thai by default, ``?lang=en`` for English (remembered in a cookie). What a page shows is
decided by :mod:`workflow.rules.access`, as for the API: a province, group or agency reads its own
organisation's letters only; agreements are public to every signed-in user.
"""

from __future__ import annotations

from workflow.web.pages import router
from workflow.web.pages.common import TEMPLATES_DIR, current_user, render, signed_in, templates

_user = current_user  # the signed-in user of a request (kept under its old name)

__all__ = ["TEMPLATES_DIR", "current_user", "render", "router", "signed_in", "templates"]
