"""`search_web` (pluggable backends) and `fetch_url` (HTTP GET with limits).

Search backends implement `SearchBackend.search(query, max_results)`:
- `HttpSearchBackend`: GETs `WEFT_SEARCH_URL?q=<query>&n=<max_results>` (bearer token from
  `WEFT_SEARCH_API_KEY` when set) and expects JSON, either `{"results": [...]}` or a bare list of
  `{"title", "url", "snippet"}` objects. Point it at SearxNG (`format=json`), a Brave/Tavily
  proxy or your own service.
- `FixtureSearchBackend`: ranks a fixed list of documents by query-term overlap, offline (the
  default corpus lives in `tools/web_fixtures.py`); used by tests and `weft demo`.
`search_backend()` picks one per call: a backend installed with `set_search_backend(...)`, else
HTTP when `WEFT_SEARCH_URL` is set, else the fixture.

`fetch_url` allows http(s) only, re-checks every redirect hop (at most 5), stops reading at
`MAX_FETCH_BYTES`, times out after `FETCH_TIMEOUT_S`, and returns text for HTML (tags
stripped), plain text and JSON; other content types are refused. Hosts that resolve to private,
loopback or link-local addresses are refused unless `WEFT_FETCH_ALLOW_PRIVATE=1` (tests and
local demos), which limits server-side request forgery; DNS may still change between our check
and the connection (rebinding), so do not rely on this alone inside a sensitive network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import socket
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any, Protocol, TypedDict
from urllib.parse import urljoin, urlsplit

import httpx
from langchain_core.tools import ToolException, tool
from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)

SEARCH_URL_ENV = "WEFT_SEARCH_URL"
SEARCH_KEY_ENV = "WEFT_SEARCH_API_KEY"
ALLOW_PRIVATE_ENV = "WEFT_FETCH_ALLOW_PRIVATE"
SEARCH_TIMEOUT_S = 10.0
FETCH_TIMEOUT_S = 10.0
MAX_FETCH_BYTES = 2_000_000
MAX_REDIRECTS = 5
MAX_SNIPPET_CHARS = 500
_TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "text/xml", "application/xml")


class SearchResult(TypedDict):
    """One search hit as the model sees it."""

    title: str
    url: str
    snippet: str


class SearchBackend(Protocol):
    """Anything that can answer a web search."""

    name: str

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Return at most `max_results` hits for `query`, best first."""
        ...


class SearchBackendError(ToolException):
    """The search service failed or answered something we cannot read."""


def _result(item: Any) -> SearchResult | None:
    if not isinstance(item, dict) or not item.get("url"):
        return None
    snippet = str(item.get("snippet") or item.get("content") or item.get("description") or "")
    return SearchResult(
        title=str(item.get("title") or item["url"]),
        url=str(item["url"]),
        snippet=snippet[:MAX_SNIPPET_CHARS],
    )


class HttpSearchBackend:
    """Search through an HTTP JSON endpoint (`GET url?q=...&n=...`)."""

    name = "http"

    def __init__(
        self, url: str, *, api_key: str | None = None, timeout_s: float = SEARCH_TIMEOUT_S
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"search URL must be http(s), got {url!r}")
        self.url = url
        self._api_key = api_key
        self.timeout_s = timeout_s

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Query the endpoint and normalise its JSON into `SearchResult`s."""
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(
                    self.url, params={"q": query, "n": max_results}, headers=headers
                )
        except httpx.HTTPError as exc:
            raise SearchBackendError(
                f"Error: the search service is unreachable ({type(exc).__name__}); try again "
                "later or answer without searching."
            ) from None
        if response.status_code != 200:
            raise SearchBackendError(
                f"Error: the search service answered HTTP {response.status_code}; try again "
                "later or answer without searching."
            )
        try:
            payload = response.json()
        except ValueError:
            raise SearchBackendError("Error: the search service did not return JSON.") from None
        items = payload.get("results", []) if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise SearchBackendError("Error: the search service returned no result list.")
        results = [r for r in map(_result, items) if r is not None]
        return results[:max_results]


_WORD = re.compile(r"\w+", re.UNICODE)


def _terms(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 1}


class FixtureSearchBackend:
    """Offline search over fixed documents, ranked by how many query terms each contains.

    Ties keep the documents' order. Documents sharing no term with the query are not returned.
    """

    name = "fixture"

    def __init__(self, documents: Sequence[SearchResult] | None = None) -> None:
        if documents is None:
            from tools.web_fixtures import SEARCH_FIXTURE

            documents = SEARCH_FIXTURE
        self.documents = list(documents)

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Rank the fixture documents for `query`."""
        wanted = _terms(query)
        scored = [
            (len(wanted & _terms(f"{d['title']} {d['snippet']}")), i, d)
            for i, d in enumerate(self.documents)
        ]
        ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
        return [
            SearchResult(title=d["title"], url=d["url"], snippet=d["snippet"])
            for _, _, d in ranked[:max_results]
        ]


_installed_backend: SearchBackend | None = None


def set_search_backend(backend: SearchBackend | None) -> None:
    """Install a backend for every later `search_web` call (None restores env selection)."""
    global _installed_backend
    _installed_backend = backend


def search_backend() -> SearchBackend:
    """The backend for this call: installed one, else HTTP if `WEFT_SEARCH_URL`, else fixture."""
    if _installed_backend is not None:
        return _installed_backend
    url = os.environ.get(SEARCH_URL_ENV)
    if url:
        return HttpSearchBackend(url, api_key=os.environ.get(SEARCH_KEY_ENV) or None)
    return FixtureSearchBackend()


class SearchWebArgs(BaseModel):
    """Arguments of `search_web`."""

    query: str = Field(
        min_length=1,
        max_length=500,
        description="What to search for, in plain words, e.g. 'langgraph interrupt resume'.",
    )
    max_results: int = Field(default=5, ge=1, le=20, description="How many results (1-20).")


@tool("search_web", args_schema=SearchWebArgs)
async def search_web(query: str, max_results: int = 5) -> list[SearchResult]:
    """Search the web and return the best matching pages (title, url, snippet).

    Snippets are short; call fetch_url on a result's url to read the page.
    """
    if not query.strip():
        raise ToolException("Error: the query is blank; give some search words.")
    backend = search_backend()
    results = await backend.search(query.strip(), max_results)
    logger.debug("search_web via %s: %d result(s)", backend.name, len(results))
    return results


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """Visible text and title of an HTML page (scripts, styles and the head dropped)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line), " ".join(parser.title.split())


def _private_allowed() -> bool:
    return os.environ.get(ALLOW_PRIVATE_ENV, "").lower() in {"1", "true", "yes"}


async def _check_host(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ToolException(f"Error: only http and https URLs can be fetched, got {url!r}.")
    host = parts.hostname
    if not host:
        raise ToolException(f"Error: {url!r} has no host name.")
    if _private_allowed():
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or 443, type=socket.SOCK_STREAM
        )
    except socket.gaierror:
        raise ToolException(f"Error: cannot resolve host {host!r}; check the URL.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ToolException(
                f"Error: {host!r} points to a private or local network address; only public "
                "web pages can be fetched."
            )


def _decode_body(body: bytes, content_type: str, charset: str | None) -> tuple[str, str]:
    text = body.decode(charset or "utf-8", errors="replace")
    if content_type in ("text/html", "application/xhtml+xml"):
        return html_to_text(text)
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.dumps(json.loads(text), indent=1, ensure_ascii=False), ""
        except ValueError:
            return text, ""
    return text, ""


class FetchUrlArgs(BaseModel):
    """Arguments of `fetch_url`."""

    url: str = Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://\S+$",
        description="Full http or https address of the page, e.g. 'https://example.com/docs'.",
    )
    max_chars: int = Field(
        default=20_000,
        ge=500,
        le=100_000,
        description="Most characters of page text to return (500-100000).",
    )


async def _get_capped(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, bytes, bool]:
    async with client.stream("GET", url) as response:
        chunks: list[bytes] = []
        size = 0
        capped = False
        if 300 <= response.status_code < 400:
            return response, b"", False
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_FETCH_BYTES:
                capped = True
                break
        return response, b"".join(chunks)[:MAX_FETCH_BYTES], capped


@tool("fetch_url", args_schema=FetchUrlArgs)
async def fetch_url(url: str, max_chars: int = 20_000) -> dict[str, Any]:
    """Download a web page or text/JSON document and return its readable text.

    HTML is reduced to its visible text. Binary files (images, PDFs, archives) are refused.
    """
    headers = {"User-Agent": "weftgraph-fetch/0.1", "Accept": "text/html, text/*, application/json"}
    current = url
    async with httpx.AsyncClient(
        timeout=FETCH_TIMEOUT_S, follow_redirects=False, headers=headers
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            await _check_host(current)
            try:
                response, body, capped = await _get_capped(client, current)
            except httpx.TimeoutException:
                raise ToolException(
                    f"Error: {current!r} did not answer within {FETCH_TIMEOUT_S:g} s."
                ) from None
            except httpx.HTTPError as exc:
                raise ToolException(
                    f"Error: cannot fetch {current!r} ({type(exc).__name__})."
                ) from None
            location = response.headers.get("location")
            if 300 <= response.status_code < 400 and location:
                current = urljoin(current, location)
                continue
            break
        else:
            raise ToolException(f"Error: {url!r} redirected more than {MAX_REDIRECTS} times.")
    if response.status_code >= 400:
        raise ToolException(f"Error: {current!r} answered HTTP {response.status_code}.")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (
        content_type.startswith("text/")
        or content_type in _TEXT_TYPES
        or content_type in ("application/json", "application/xhtml+xml")
        or content_type.endswith("+json")
    ):
        raise ToolException(
            f"Error: {current!r} is {content_type or 'of unknown type'!r}, not text; only "
            "HTML, plain text and JSON can be read."
        )
    text, title = _decode_body(body, content_type, response.charset_encoding)
    return {
        "url": current,
        "status": response.status_code,
        "content_type": content_type,
        "title": title,
        "text": text[:max_chars],
        "truncated": capped or len(text) > max_chars,
    }
