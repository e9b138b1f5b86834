"""Cross-origin requests, answered as upstream's `rs/cors` handler is configured there.

Upstream allows the origins of `http.allowedOrigins` (here `IMAGE_FACTORY_ALLOWED_ORIGINS`,
comma-separated, default `*`; an entry may hold one `*` wildcard, `https://*.example.com`),
the methods HEAD, GET and OPTIONS, the request header `Cache-Control`, and exposes
`Content-Disposition`, `Content-Length` and `Content-Type`:

- a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here,
  before any route or token check, with 204: when origin, method and requested headers are
  allowed it carries `Access-Control-Allow-Origin`, the requested method (upper case) as
  `Access-Control-Allow-Methods` and the requested headers as sent as
  `Access-Control-Allow-Headers`; otherwise none of them (the browser then refuses);
- an actual GET or HEAD from an allowed origin gets `Access-Control-Allow-Origin` and
  `Access-Control-Expose-Headers`; other methods get nothing (as upstream: cross-origin
  writes are not offered).

Responses say `Vary: Origin` (preflights also vary on the two request headers) so caches
keep answers for different origins apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, g, request

ALLOWED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# rs/cors always accepts `Origin` besides the configured headers.
ALLOWED_HEADERS = frozenset({"cache-control", "origin"})
EXPOSED_HEADERS = "Content-Disposition, Content-Length, Content-Type"
PREFLIGHT_VARY = ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
_ANSWERED = "image_factory_cors_preflight"


@dataclass(frozen=True)
class Origins:
    """The allowed origins: `any` for `*`, else exact names and (prefix, suffix) patterns."""

    any: bool
    exact: frozenset[str]
    patterns: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Origins:
        entries = [e.strip().lower() for e in text.split(",") if e.strip()]
        if not entries or "*" in entries:
            return cls(True, frozenset(), ())
        exact = frozenset(e for e in entries if "*" not in e)
        wildcards = (e.partition("*") for e in entries if "*" in e)
        patterns = tuple((prefix, suffix) for prefix, _, suffix in wildcards)
        return cls(False, exact, patterns)

    def allows(self, origin: str) -> bool:
        origin = origin.lower()
        if self.any or origin in self.exact:
            return True
        return any(
            len(origin) >= len(p) + len(s) and origin.startswith(p) and origin.endswith(s)
            for p, s in self.patterns
        )

    def allow_origin_value(self, origin: str) -> str:
        return "*" if self.any else origin


def install_cors(app: Flask, allowed_origins: str) -> None:
    """Answer preflights before anything else runs and mark actual GET/HEAD responses."""
    origins = Origins.parse(allowed_origins)

    def preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        setattr(g, _ANSWERED, True)
        response = Response(status=204)
        for name in PREFLIGHT_VARY:
            response.vary.add(name)
        origin = request.headers.get("Origin", "")
        method = request.headers.get("Access-Control-Request-Method", "").upper()
        asked = request.headers.get("Access-Control-Request-Headers", "")
        names = {h.strip().lower() for h in asked.split(",") if h.strip()}
        allowed = origin and origins.allows(origin) and method in ALLOWED_METHODS
        if allowed and names <= ALLOWED_HEADERS:
            response.headers["Access-Control-Allow-Origin"] = origins.allow_origin_value(origin)
            response.headers["Access-Control-Allow-Methods"] = method
            if asked:
                response.headers["Access-Control-Allow-Headers"] = asked
        return response

    def mark_actual(response: Response) -> Response:
        if g.get(_ANSWERED):
            return response  # a preflight answer, complete already
        if "Vary" in response.headers:
            response.vary.add("Origin")
        else:
            response.headers["Vary"] = "Origin"  # the same, without parsing a header set
        origin = request.headers.get("Origin", "")
        if origin and origins.allows(origin) and request.method in ALLOWED_METHODS:
            response.headers["Access-Control-Allow-Origin"] = origins.allow_origin_value(origin)
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    # First of all before-request functions: a preflight carries no token and names no route.
    app.before_request_funcs.setdefault(None, []).insert(0, preflight)
    app.after_request(mark_actual)
