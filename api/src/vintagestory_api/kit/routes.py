"""Route templates for HTTP metrics and logs: labels never carry raw paths."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import Scope

UNMATCHED = "unmatched"
# Any other method string a client sends would be a new label value; fold them into one.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_Templates = dict[int, list[tuple[re.Pattern[str], str]]]


def _route_templates(router: Any) -> _Templates:
    """Full path template of every route, keyed by the route object routing puts in the scope.

    FastAPI does not copy the routes of an included router any more: `scope["route"]` is the
    router's own route object, whose `path` lacks the prefixes it was included under
    (`/jobs/{job_id}`, not `/api/v1alpha1/jobs/{job_id}`). The full template comes from walking
    the app's routes. One route included twice has two templates; the path decides which.
    """
    templates: _Templates = {}
    for context in iter_route_contexts(router.routes):
        path_format = context.path_format
        if path_format is None:
            continue
        regex, _, _ = compile_path(path_format)
        templates.setdefault(id(context.original_route), []).append((regex, path_format))
    return templates


class RouteLabeler:
    """The route template of a handled request, for metric labels and the access log."""

    def __init__(self) -> None:
        self._templates: _Templates | None = None

    def route(self, scope: Scope) -> str:
        return self._route(scope)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        if self._templates is None:
            # Routes are all registered before the first request; one walk serves the app's life.
            self._templates = _route_templates(scope["router"]) if "router" in scope else {}
        candidates = self._templates.get(id(route), [])
        if len(candidates) == 1:
            return candidates[0][1]
        path = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        for regex, template in candidates:
            if regex.match(path):
                return template
        # A route of a mounted sub-application: the mount's matched prefix plus the route's own
        # template. Routes always have a template; fall back to the fixed label, not the path.
        own = getattr(route, "path_format", None)
        if not isinstance(own, str):
            return UNMATCHED
        app_root_path: str = scope.get("app_root_path", root_path)
        return root_path[len(app_root_path) :] + own
