"""Links to a session's interface as API answers and pages give them: the full session-host URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import current_app, has_request_context, request, session

from manager.proxy.hosts import NoSessionDomain, label_for, prefix_of
from manager.proxy.routing import PROXY_PATH


def public_proxy_url(path: str | None) -> str | None:
    """``/project/<p>/script/<s>/user/<u>/`` as the URL to open: on the session's own host.

    Outside a request, in the manager-origin mode, when no session domain is known for the
    address the manager is reached at, or when that address is not the manager's canonical one
    (SM_PUBLIC_URL, or localhost), the path stays as it is: opened on the manager's origin it
    redirects to the session host with a ticket, or explains what is missing.
    """
    if not path or not has_request_context():
        return path
    proxy = current_app.extensions.get("sm_proxy")
    match = PROXY_PATH.match(path)
    if proxy is None or match is None or not proxy.router.isolated:
        return path
    project, script, user = (int(x) for x in match.group(1, 2, 3))
    router = proxy.router
    try:
        url = str(
            router.session_url(
                request.scheme, request.host, (project, script, user), match.group(4) or "/"
            )
        )
    except NoSessionDomain:
        return path
    # A session host sends a visitor without its cookie to the manager's canonical origin for
    # a ticket. Reached under another name (127.0.0.1 rather than localhost), the browser's
    # login is not there: the path on this origin hands out the ticket itself.
    session_host = url.split("/", 3)[2]
    if router.manager_origin(request.scheme, session_host) != f"{request.scheme}://{request.host}":
        return path
    return url


def session_entry_url(path: str | None, session_key: str, user: Any) -> str | None:
    """The session host's way in for ``user``, the session's owner, who has just started or
    reopened it: ``/__sm/enter`` with a fresh ticket, so the browser skips the round trip to
    the manager's origin for one (two redirects).

    The ticket is the one that origin would mint (single-use, ``SM_SESSION_TICKET_TTL``
    seconds, stored hashed, bound to the session's host and execution uuid, and to the caller's
    browser login); give it only in the answer to that owner's own request. None when the
    session is not served on a host of its own for this request (see ``public_proxy_url``).
    """
    url = public_proxy_url(path)
    match = PROXY_PATH.match(path or "")
    if url is None or url.startswith("/") or match is None or not has_request_context():
        return None
    from manager.auth.logins import SESSION_KEY
    from manager.extensions import db
    from manager.proxy.sessionhost import ENTER_PATH
    from manager.proxy.tickets import mint_ticket

    router = current_app.extensions["sm_proxy"].router
    project, script, owner = (int(x) for x in match.group(1, 2, 3))
    if owner != user.id:
        return None
    ids = (project, script, owner)
    login_id = session.get(SESSION_KEY)
    ticket = mint_ticket(
        db.session,
        user_id=user.id,
        is_admin=bool(user.is_admin),
        login_id=login_id if isinstance(login_id, str) else None,
        host_label=label_for(ids),
        session_key=session_key,
        manager_origin=router.public_url or f"{request.scheme}://{request.host}",
        ttl=float(current_app.config.get("SM_SESSION_TICKET_TTL", 30.0)),
    )
    target = prefix_of(ids) + (match.group(4) or "/")
    origin = router.session_origin(request.scheme, request.host, ids)
    return f"{origin}{ENTER_PATH}?ticket={ticket}&next={quote(target, safe='')}"


MANAGER_MODE_RISK = (
    "Script interfaces are served on the manager's own origin (SM_SESSION_HOST_MODE=manager): "
    "a script's page can act as whoever opens it. Use per-session hosts (see the README)."
)


def session_host_problem() -> str | None:
    """What is unsafe or missing about session hosts for this request's address, for admins."""
    if not has_request_context():
        return None
    proxy = current_app.extensions.get("sm_proxy")
    if proxy is None:
        return None
    if not proxy.router.isolated:
        return MANAGER_MODE_RISK
    try:
        proxy.router.session_domain(request.host)
    except NoSessionDomain as exc:
        return str(exc)
    return None
