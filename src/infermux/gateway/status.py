"""``GET /status``: a read-only HTML page of what the gateway is doing (endpoints, breakers, queues, keys in use,
cache), for a person with a browser. One self-contained page: inline CSS, no script, no external asset; it
reloads itself every ``REFRESH_S`` seconds (``<meta http-equiv="refresh">``).

Who may see it is the ``status_page`` setting: ``"admin"`` (default: the master key, as ``Authorization:
Bearer`` or as the password of HTTP Basic auth, which a browser asks for), ``"open"`` (anyone who can reach
the gateway; meant for loopback or a private network) or ``"off"`` (404). No secret is ever shown: upstream keys
by their labels (``key#1:3f2a9c``), virtual keys by ID and name, URLs without credentials (the endpoints'
``shown_url``).
"""

from __future__ import annotations

import base64
import binascii
import html
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import InfermuxError
from .app import RID_KEY
from .errors import GatewayError
from .keys import VirtualKey, secret_equal

if TYPE_CHECKING:  # pragma: no cover
    from .app import Gateway

__all__ = ["REFRESH_S", "render_status", "status_page"]

REFRESH_S = 5

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
h1{font-size:20px;margin:0 0 .2em} h2{font-size:16px;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.3em 0} th,td{border:1px solid #c8ccd1;padding:3px 8px;text-align:left}
th{background:#eef1f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
.closed,.up,.ready{background:#c9f2cf} .half_open,.half-open{background:#fde9a8}
.open,.down,.notready,.disabled{background:#f7c1c1} .muted{color:#5b636b}
"""


def _e(v: Any) -> str:
    return html.escape("-" if v is None else str(v), quote=True)


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return _e(v)


def _table(head: Iterable[str], rows: Iterable[Iterable[tuple[str, str]]], *, table_id: str) -> str:
    """``rows``: per row, (html content, css class) cells; the content is already escaped."""
    out = [f'<table id="{table_id}"><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells = "".join(f'<td class="{cls}">{content}</td>' if cls else f"<td>{content}</td>" for content, cls in row)
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _flat(d: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            yield from _flat(v, name + ".")
        else:
            yield name, v


def render_status(gw: Gateway, virtual_keys: Sequence[VirtualKey] | str, *, now: float | None = None) -> str:
    """The status page's HTML for ``gw`` now (pure: reads the gateway's and the client's snapshots);
    ``virtual_keys``: the live keys, or why they could not be listed (the shared store is down)."""
    stats = gw.client.stats()
    counters = gw.counters.snapshot()
    ready, detail = gw.readiness()
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() if now is None else now))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_S}">',
        "<title>infermux gateway status</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>infermux gateway</h1>",
        f'<p class="muted">read-only status at {_e(at)}; reloads every {REFRESH_S} s</p>',
        f'<p id="readiness" class="{"ready" if ready else "notready"}">'
        f"{'ready' if ready else 'not ready'}{' (draining)' if gw.draining else ''}</p>",
    ]
    parts.append("<h2>Gateway</h2>")
    rows = [[(_e(k), ""), (_num(v), "n")] for k, v in _flat(counters)]
    parts.append(_table(("counter", "value"), rows, table_id="gateway"))

    endpoints = [ep.name for ep in gw.client.endpoints]
    parts.append("<h2>Endpoints</h2>")
    ep_rows = []
    for name in endpoints:
        s = stats.get(name, {})
        br = s.get("breaker") or {}
        q = s.get("queue") or {}
        state = str(br.get("state", "-"))
        lat = s.get("latency_s") or {}
        ep_rows.append(
            [
                (_e(name), ""),
                (_e(s.get("provider")), ""),
                (_e(s.get("model")), ""),
                (_e(s.get("base_url")), ""),
                (_e(state), state.replace("-", "_")),
                (_num(br.get("retry_in")), "n"),
                (_num(s.get("in_flight")), "n"),
                (_num(q.get("waiting")), "n"),
                (f"{_num(q.get('max_concurrency'))} / {_num(q.get('max_queue'))}", "n"),
                (_num(s.get("requests")), "n"),
                (_num(s.get("successes")), "n"),
                (_num(s.get("failures_total")), "n"),
                (_num(s.get("retries")), "n"),
                (_num(lat.get("p50")), "n"),
                (_num(lat.get("p99")), "n"),
            ]
        )
    head = ("endpoint", "provider", "model", "URL", "breaker", "retry in s", "in flight", "queued",
            "max conc. / queue", "requests", "ok", "failed", "retries", "p50 s", "p99 s")  # fmt: skip
    parts.append(_table(head, ep_rows, table_id="endpoints"))

    parts.append("<h2>Models (readiness)</h2>")
    models = detail.get("models", {})
    m_rows = [[(_e(m), ""), (_e(", ".join(eps) or "none usable"), "" if eps else "down")] for m, eps in models.items()]
    parts.append(_table(("model or group", "usable endpoints"), m_rows, table_id="models"))

    parts.append("<h2>Upstream keys</h2>")
    k_rows = []
    for name in endpoints:
        for k in stats.get(name, {}).get("keys") or []:
            off = bool(k.get("disabled"))
            k_rows.append(
                [
                    (_e(name), ""),
                    (_e(k.get("label")), ""),
                    (_num(k.get("in_flight")), "n"),
                    (_num(k.get("requests")), "n"),
                    (_num(k.get("rate_limited")), "n"),
                    (_num(k.get("cooling_down_for")), "n"),
                    (_e(f"disabled: {k.get('disabled_reason') or ''}" if off else "usable"), "disabled" if off else ""),
                ]
            )
    k_head = ("endpoint", "key (label)", "in flight", "requests", "rate limited", "cooling s", "state")
    parts.append(_table(k_head, k_rows, table_id="upstream-keys"))

    parts.append(f"<h2>Virtual keys ({_e(gw.state.name)} state)</h2>")
    if isinstance(virtual_keys, str):
        parts.append(f'<p id="virtual-keys" class="down">cannot list them: {_e(virtual_keys)}</p>')
    else:
        v_rows = [
            [
                (_e(k.id), ""),
                (_e(k.name), ""),
                (_e(", ".join(k.models) or "any"), ""),
                (_num(k.rpm), "n"),
                (_num(k.tpm), "n"),
                (f"{k.spent:.6f} / {_num(k.budget)}", "n"),
            ]
            for k in virtual_keys
        ]
        v_head = ("id", "name", "models", "rpm", "tpm", "spent / budget USD")
        parts.append(_table(v_head, v_rows, table_id="virtual-keys"))

    parts.append("<h2>Cache</h2>")
    cache = stats.get("cache")
    if isinstance(cache, Mapping) and cache:
        c_rows = [[(_e(k), ""), (_num(v), "n")] for k, v in _flat(cache)]
        parts.append(_table(("statistic", "value"), c_rows, table_id="cache"))
    else:
        parts.append('<p id="cache" class="muted">no cache configured</p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _authorized(gw: Gateway, request: web.BaseRequest) -> bool:
    master = gw.settings.master_key
    if master is None:  # no master key: the gateway serves without auth (loopback only, or allow_open)
        return True
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    token = ""
    if scheme.lower() == "bearer":
        token = value.strip()
    elif scheme.lower() == "basic":
        try:
            token = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            token = ""
    return bool(token) and secret_equal(token, master)


async def status_page(gw: Gateway, request: web.BaseRequest) -> web.Response:
    mode = gw.settings.status_page
    if mode == "off":
        raise GatewayError(404, 'the status page is off (status_page = "off" in [gateway])')
    if mode == "admin" and not _authorized(gw, request):
        gw.counters.auth_failures += 1
        raise GatewayError(
            401,
            "the status page needs the master key (Authorization: Bearer, or as the password of Basic auth)",
            headers={"www-authenticate": 'Basic realm="infermux status", charset="UTF-8"'},
        )
    keys: Sequence[VirtualKey] | str
    try:
        keys = await gw.state.list_keys()
    except InfermuxError as e:  # the shared store is down: the page still shows everything else
        keys = f"{type(e).__name__}: {e}"
    headers = {"x-request-id": request[RID_KEY], "cache-control": "no-store"}
    return web.Response(text=render_status(gw, keys), content_type="text/html", charset="utf-8", headers=headers)
