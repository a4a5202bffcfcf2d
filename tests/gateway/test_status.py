"""``GET /status``: the read-only HTML status page. Parsed in pure Python (always runs), and rendered by a real
headless Chromium (Debian's ``chromium``; skipped with the reason when it is not installed): a screenshot whose
pixels must show the page's state colours, and the DOM it built."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
from collections.abc import AsyncIterator, Mapping
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest

import infermux
from infermux.sandbox import Sandbox

from .conftest import MASTER, Rig, make_rig

pytestmark = pytest.mark.timeout(60)
#: endpoints whose breaker, once open, stays open for the test (it runs on the real clock)
LONG_OPEN = {"breaker": infermux.BreakerConfig(open_seconds=600)}


class Tables(HTMLParser):
    """Every ``<table id=...>`` as rows of (cell text, cell class); plus tags seen and the meta refresh."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str]]]] = {}
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.ids: dict[str, str] = {}  # id -> text of a non-table element with that id
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._cls = ""
        self._id_text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += attrs
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell, self._cls = [], a.get("class") or ""
        elif a.get("id"):
            self._id_text = a["id"]
            self.ids[a["id"] or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(("".join(self._cell), self._cls))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif self._id_text is not None:
            self._id_text = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._id_text is not None:
            self.ids[self._id_text] += data

    def rows(self, table: str) -> list[dict[str, tuple[str, str]]]:
        head, *body = self.tables[table]
        return [{h: cell for (h, _), cell in zip(head, row, strict=True)} for row in body]


def parse(page: str) -> Tables:
    t = Tables()
    t.feed(page)
    t.close()
    return t


async def prepare(rig: Rig) -> str:
    """One request served (counters move), a virtual key created, the Anthropic endpoint's breaker opened by
    recorded failures (its public API, as the engine records them); returns the virtual key's secret."""
    async with aiohttp.ClientSession(headers={"authorization": f"Bearer {MASTER}"}) as http:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        async with http.post(rig.url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200, await r.text()
        async with http.post(rig.url + "/admin/keys", json={"name": "team-status", "rpm": 60}) as r:
            assert r.status == 201
            secret = str((await r.json())["key"])
    claude = next(ep for ep in rig.gw.client.endpoints if ep.name == "claude")
    while claude.breaker.state.value != "open":
        claude.breaker.record_failure(claude.breaker.acquire())
    return secret


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Mapping[str, str], str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as r:
        return r.status, r.headers.copy(), await r.text()  # case-insensitive


@pytest.fixture
async def long_open_rig() -> AsyncIterator[Rig]:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        r = await make_rig(sb, LONG_OPEN)
        try:
            yield r
        finally:
            await r.close()


async def test_status_page_shows_the_state_and_no_secret(long_open_rig: Rig) -> None:
    rig = long_open_rig
    secret = await prepare(rig)
    status, headers, page = await get(rig.url + "/status", {"authorization": f"Bearer {MASTER}"})
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["x-request-id"]
    t = parse(page)
    eps = {r["endpoint"][0]: r for r in t.rows("endpoints")}
    assert set(eps) == {"gpt", "claude"}
    assert eps["gpt"]["breaker"] == ("closed", "closed") and eps["claude"]["breaker"] == ("open", "open")
    assert eps["gpt"]["requests"][0] == "1" and eps["gpt"]["ok"][0] == "1"
    assert eps["gpt"]["provider"][0] == "openai" and eps["claude"]["model"][0] == "claude-sonnet-4-20250514"
    models = {r["model or group"][0]: r["usable endpoints"] for r in t.rows("models")}
    assert models["gpt-4o-mini"][0] == "gpt" and models["claude-sonnet-4-20250514"] == ("none usable", "down")
    assert t.ids["readiness"] == "not ready"  # a model has no usable endpoint
    keys = t.rows("upstream-keys")
    labels = rig.gw.client.stats()
    assert [r["key (label)"][0] for r in keys] == [k["label"] for ep in ("gpt", "claude") for k in labels[ep]["keys"]]
    assert [r["name"][0] for r in t.rows("virtual-keys")] == ["team-status"]
    counters = {r["counter"][0]: r["value"][0] for r in t.rows("gateway")}
    assert int(counters["requests"]) >= 3
    assert t.ids["cache"] == "no cache configured"
    # no secret: not the master key, not the upstream keys, not the virtual key (nor its hash)
    for s in (MASTER, "sk-up-1", "sk-ant-up", secret, rig.gw.keys.all()[0].key_hash):
        assert s not in page
    # self-contained and read-only: no script, no external asset, no form; reloads itself
    assert not t.tags & {"script", "link", "img", "iframe", "form", "input"}
    assert not [v for k, v in t.attrs if k in ("src", "href", "action")]
    assert ("http-equiv", "refresh") in t.attrs


async def test_status_page_access(rig: Rig) -> None:
    secret = await prepare(rig)
    status, headers, body = await get(rig.url + "/status")
    assert status == 401 and headers["www-authenticate"].startswith("Basic ") and "master key" in body
    assert (await get(rig.url + "/status", {"authorization": f"Bearer {secret}"}))[0] == 401  # a virtual key
    basic = base64.b64encode(f"admin:{MASTER}".encode()).decode()
    assert (await get(rig.url + "/status", {"authorization": f"Basic {basic}"}))[0] == 200  # a browser's login
    bad = base64.b64encode(b"admin:wrong-key").decode()
    assert (await get(rig.url + "/status", {"authorization": f"Basic {bad}"}))[0] == 401
    assert (await get(rig.url + "/status", {"authorization": "Basic !!!"}))[0] == 401


@pytest.mark.parametrize(("mode", "expected"), [("open", 200), ("off", 404)])
async def test_status_page_setting(mode: str, expected: int) -> None:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        rig = await make_rig(sb, status_page=mode)
        try:
            assert (await get(rig.url + "/status"))[0] == expected
        finally:
            await rig.close()


def test_status_page_setting_is_validated() -> None:
    from infermux.errors import ConfigurationError
    from infermux.gateway import GatewaySettings, settings_from_dict

    assert settings_from_dict({"status_page": "open"}).status_page == "open"
    with pytest.raises(ConfigurationError, match="status_page"):
        GatewaySettings(status_page="public")


# ---------------------------------------------------------------------------------------------- Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def open_rig() -> AsyncIterator[Rig]:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        # a headless browser sends no Authorization header; the breaker stays open while the browser looks
        r = await make_rig(sb, LONG_OPEN, status_page="open")
        try:
            yield r
        finally:
            await r.close()


async def chromium(*args: str, timeout: float = 45) -> bytes:
    assert CHROMIUM is not None
    flags = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--mute-audio")  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, *flags, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def colour_share(png: bytes, rgb: tuple[int, int, int], tol: int = 6) -> float:
    """Share of the screenshot's pixels within ``tol`` of ``rgb``."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    n = 0
    for count, (r, g, b) in img.getcolors(img.width * img.height) or []:
        if abs(r - rgb[0]) <= tol and abs(g - rgb[1]) <= tol and abs(b - rgb[2]) <= tol:
            n += count
    return n / (img.width * img.height)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
async def test_status_page_in_headless_chromium(open_rig: Rig, tmp_path: Path) -> None:
    pytest.importorskip("PIL", reason="the screenshot check needs Pillow (the test extra)")
    await prepare(open_rig)
    url = open_rig.url + "/status"
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    shot = tmp_path / "status.png"
    await chromium(profile, f"--screenshot={shot}", "--window-size=1400,1000", url)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert img.size == (1400, 1000)
    colours = img.getcolors(1400 * 1000) or []
    assert len(colours) > 50, "a blank screenshot"  # text is anti-aliased: many shades
    assert max(c for c, _ in colours) < 0.98 * 1400 * 1000  # not one colour almost everywhere
    # the page's state colours were painted: the closed breaker's green cell, the open one's red cell,
    # the table header grey
    assert colour_share(png, (0xC9, 0xF2, 0xCF)) > 0.0005
    assert colour_share(png, (0xF7, 0xC1, 0xC1)) > 0.0005
    assert colour_share(png, (0xEE, 0xF1, 0xF4)) > 0.001
    dom = (await chromium(profile, "--dump-dom", url)).decode()
    t = parse(dom)
    states = {r["endpoint"][0]: r["breaker"][0] for r in t.rows("endpoints")}
    assert states == {"gpt": "closed", "claude": "open"}
    assert [r["name"][0] for r in t.rows("virtual-keys")] == ["team-status"]


async def test_status_page_with_redis_state_up_and_down() -> None:
    """With keys in Redis (a real server) the page lists them; with Redis stopped it still renders, saying why."""
    from .conftest import redis_server

    async with Sandbox(host="127.0.0.1", port=0) as sb:
        with redis_server() as url:
            kw = {"state": "redis", "redis_url": url, "redis_prefix": f"st{id(sb)}", "redis_timeout": 0.3}
            rig = await make_rig(sb, status_page="open", **kw)
            try:
                master = {"authorization": f"Bearer {MASTER}"}
                async with (
                    aiohttp.ClientSession(headers=master) as http,
                    http.post(rig.url + "/admin/keys", json={"name": "in-redis"}) as r,
                ):
                    assert r.status == 201
                status, _, page = await get(rig.url + "/status")
                assert status == 200 and [r["name"][0] for r in parse(page).rows("virtual-keys")] == ["in-redis"]
                assert "Virtual keys (redis state)" in page
            except BaseException:
                await rig.close()
                raise
        try:  # the server is stopped
            status, _, page = await get(rig.url + "/status")
            t = parse(page)
            assert status == 200 and "virtual-keys" not in t.tables
            assert t.ids["virtual-keys"].startswith("cannot list them: ") and "Redis" in t.ids["virtual-keys"]
            assert {r["endpoint"][0] for r in t.rows("endpoints")} == {"gpt", "claude"}
        finally:
            await rig.close()
