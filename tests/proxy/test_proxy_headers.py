"""The pure header rules: cookies, redirects and hop-by-hop headers."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manager.proxy.headers import (
    header_lines,
    request_line,
    response_headers,
    rewrite_location,
    rewrite_set_cookie,
    split_cookies,
)

PREFIX = "/project/1/script/2/user/3"
UPSTREAM = frozenset({"10.0.0.5:8080"})
MANAGER_COOKIES = frozenset({"sm_session", "remember_token"})


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/thanks", f"{PREFIX}/thanks"),
        ("/", f"{PREFIX}/"),
        (f"{PREFIX}/thanks", f"{PREFIX}/thanks"),
        (f"{PREFIX}", f"{PREFIX}"),
        (f"{PREFIX}?a=1", f"{PREFIX}?a=1"),
        ("/project/1/script/2/user/30/x", f"{PREFIX}/project/1/script/2/user/30/x"),
        ("thanks", "thanks"),
        ("../up", "../up"),
        ("http://10.0.0.5:8080/thanks?a=1#top", f"{PREFIX}/thanks?a=1#top"),
        ("http://10.0.0.5:8080", f"{PREFIX}/"),
        (f"http://10.0.0.5:8080{PREFIX}/x", f"{PREFIX}/x"),
        ("https://example.org/x", "https://example.org/x"),
        ("//example.org/x", "//example.org/x"),
    ],
)
def test_rewrite_location(location: str, expected: str) -> None:
    assert rewrite_location(location, PREFIX, UPSTREAM) == expected


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("a=1", f"a=1; Path={PREFIX}/"),
        ("a=1; Path=/", f"a=1; Path={PREFIX}/"),
        ("a=1; path=/sub; HttpOnly", f"a=1; Path={PREFIX}/sub; HttpOnly"),
        (f"a=1; Path={PREFIX}/x", f"a=1; Path={PREFIX}/x"),
        (
            "a=1; Domain=example.com; Secure; SameSite=Lax",
            f"a=1; Secure; SameSite=Lax; Path={PREFIX}/",
        ),
        (
            "a=x=y; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
            f"a=x=y; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path={PREFIX}/",
        ),
        ("sm_session=evil; Path=/", None),
        (" remember_token=evil", None),
        ("=nameless", None),
    ],
)
def test_rewrite_set_cookie(cookie: str, expected: str | None) -> None:
    assert rewrite_set_cookie(cookie, PREFIX, MANAGER_COOKIES) == expected


def test_split_cookies_keeps_the_scripts_own() -> None:
    dropped, kept = split_cookies(
        "session=s1; sm_session=abc.def; theme=dark;remember_token=r; x", MANAGER_COOKIES
    )
    assert dropped == {"sm_session": "abc.def", "remember_token": "r"}
    assert kept == "session=s1; theme=dark; x"


def test_response_headers_drop_hop_by_hop_and_rewrite() -> None:
    lines = [
        "Content-Type: text/html",
        "Connection: keep-alive, X-Private",
        "X-Private: 1",
        "Keep-Alive: timeout=5",
        "Transfer-Encoding: chunked",
        "Server: waitress",
        "Date: Wed, 25 Nov 2026 10:00:00 GMT",
        "Location: /next",
        "Set-Cookie: a=1",
        "Set-Cookie: sm_session=evil",
        "X-Multi: one",
        "X-Multi: two",
    ]
    headers = response_headers(
        lines, prefix=PREFIX, upstream_hosts=UPSTREAM, forbidden_cookies=MANAGER_COOKIES
    )
    assert headers == [
        ("Content-Type", "text/html"),
        ("Location", f"{PREFIX}/next"),
        ("Set-Cookie", f"a=1; Path={PREFIX}/"),
        ("X-Multi", "one"),
        ("X-Multi", "two"),
    ]
    kept = response_headers(
        lines,
        prefix=PREFIX,
        upstream_hosts=UPSTREAM,
        forbidden_cookies=MANAGER_COOKIES,
        keep_date=True,
    )
    assert ("Date", "Wed, 25 Nov 2026 10:00:00 GMT") in kept


def test_request_head_forwards_end_to_end_headers_only() -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "HTTP_ACCEPT": "*/*",
        "HTTP_X_CUSTOM_THING": "v",
        "HTTP_HOST": "manager:5002",
        "HTTP_COOKIE": "sm_session=secret",
        "HTTP_X_CSRFTOKEN": "token",
        "HTTP_CONNECTION": "keep-alive",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "HTTP_X_FORWARDED_HOST": "evil",
        "wsgi.input": io.BytesIO(b"{}"),
    }
    head = request_line("POST", "/echo?a=1") + header_lines(
        environ,
        host="10.0.0.5:8080",
        cookie="session=s",
        forwarded={"X-Forwarded-Prefix": PREFIX},
        framing="Content-Length: 2\r\n",
    )
    text = head.decode()
    lines = text.split("\r\n")
    assert lines[0] == "POST /echo?a=1 HTTP/1.1"
    assert set(lines[1:-2]) == {
        "Host: 10.0.0.5:8080",
        "Accept: */*",
        "X-Custom-Thing: v",
        "Content-Type: application/json",
        "Cookie: session=s",
        f"X-Forwarded-Prefix: {PREFIX}",
        "Content-Length: 2",
    }
    assert text.endswith("\r\n\r\n")


def reference_response_headers(
    lines: list[str], *, keep_date: bool, protect: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    """response_headers as it was before its fast path for ordinary lines (every rule tried
    on every line): the rewritten one must agree with it."""
    from manager.proxy.headers import HOP_BY_HOP, SERVER_SET

    headers: list[tuple[str, str]] = []
    extra_hop: set[str] = set()
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        value = value.strip()
        lowered = name.lower()
        if lowered in HOP_BY_HOP:
            if lowered == "connection":
                extra_hop.update(token.strip().lower() for token in value.split(","))
            continue
        if lowered in SERVER_SET and not (keep_date and lowered == "date"):
            continue
        if lowered.startswith("access-control-allow-") or lowered == "x-content-type-options":
            continue
        if lowered == "location":
            value = rewrite_location(value, PREFIX, UPSTREAM)
        elif lowered == "set-cookie":
            rewritten = rewrite_set_cookie(value, PREFIX, MANAGER_COOKIES)
            if rewritten is None:
                continue
            value = rewritten
        headers.append((name, value))
    if extra_hop - {"close", "keep-alive"}:
        headers = [(k, v) for k, v in headers if k.lower() not in extra_hop]
    headers.extend(protect)
    return headers


# Header names the rules single out, in odd cases and with white space, and ordinary ones.
NAMES = st.sampled_from(
    [
        "Connection", "connection", " CONNECTION", "Keep-Alive", "Transfer-Encoding", "TE",
        "Upgrade", "Trailer", "Proxy-Authenticate", "Server", "server ", "Date", "DATE",
        "Location", "location", "Set-Cookie", "SET-COOKIE", "X-Content-Type-Options",
        "Access-Control-Allow-Origin", "access-control-allow-credentials",
        "Access-Control-Expose-Headers", "Content-Type", "Content-Length", "X-Private",
        "x-private", "X-A", "", "Cache-Control", "Vary",
    ]
)  # fmt: skip
VALUES = st.sampled_from(
    [
        "", " x ", "close", "keep-alive, X-Private", "X-A,  x-private ", "/next", "http://10.0.0.5:8080/a",
        "https://example.org/", "a=1", "sm_session=evil; Path=/", "b=2; Domain=x; path=/p",
        "text/html", "*", "5", "Wed, 25 Nov 2026 10:00:00 GMT",
    ]
)  # fmt: skip
LINES = st.lists(
    st.one_of(
        st.tuples(NAMES, st.sampled_from([":", ": ", " :", ""]), VALUES).map("".join),
        st.text(max_size=12),
    ),
    max_size=12,
)


@given(LINES, st.booleans())
def test_response_headers_agree_with_the_reference(lines: list[str], keep_date: bool) -> None:
    protect = (("X-Content-Type-Options", "nosniff"),)
    assert response_headers(
        lines,
        prefix=PREFIX,
        upstream_hosts=UPSTREAM,
        forbidden_cookies=MANAGER_COOKIES,
        keep_date=keep_date,
        protect=protect,
    ) == reference_response_headers(lines, keep_date=keep_date, protect=protect)
