import json

import pytest

from gateway.console.security import CSP, Guard, check_exposure, is_loopback, load_token
from gateway.errors import ConfigError

TOKEN = "0123456789abcdef0123456789abcdef"


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"inside"})


async def call(guard: Guard, path: str = "/api/map", query: str = "", **headers: str) -> tuple[int, dict, bytes]:
    scope = {"type": "http", "path": path, "query_string": query.encode(),
             "headers": [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await guard(scope, receive, send)
    response_headers: dict[str, str] = {}
    for name, value in sent[0]["headers"]:
        response_headers.setdefault(name.decode(), value.decode())
    return sent[0]["status"], response_headers, b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True),
                                                ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                                ("192.168.1.5", False), ("example.com", False)])
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_the_token_comes_from_its_file_or_the_environment_and_must_be_long(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert load_token(str(path), {}) == TOKEN
    assert load_token(None, {"CHOREO_CONSOLE_TOKEN": TOKEN}) == TOKEN
    assert load_token(None, {}) is None
    with pytest.raises(ConfigError, match="at least 16"):
        load_token(None, {"CHOREO_CONSOLE_TOKEN": "short"})
    with pytest.raises(ConfigError, match="cannot read it"):
        load_token(str(tmp_path / "missing"), {})
    path.write_text("has a space in it, which is refused")
    with pytest.raises(ConfigError) as refused:
        load_token(str(path), {})
    assert "space in it" not in refused.value.message  # never echoed


def test_beyond_loopback_the_console_refuses_to_start_without_a_token():
    with pytest.raises(ConfigError, match="needs a token"):
        check_exposure("0.0.0.0", None)
    check_exposure("0.0.0.0", TOKEN)
    check_exposure("127.0.0.1", None)


async def test_every_response_carries_the_security_headers_refusals_included():
    for guard, headers in ((Guard(app, None), {"host": "127.0.0.1:8080"}), (Guard(app, TOKEN), {})):
        status, sent, _ = await call(guard, **headers)
        assert sent["content-security-policy"] == CSP
        assert sent["x-content-type-options"] == "nosniff" and sent["referrer-policy"] == "no-referrer"
    assert status == 401


async def test_without_a_token_only_a_loopback_host_header_is_served():
    guard = Guard(app, None)
    assert (await call(guard, host="127.0.0.1:8080"))[0] == 200
    assert (await call(guard, host="localhost:8080"))[0] == 200
    assert (await call(guard, host="[::1]:8080"))[0] == 200
    status, _, body = await call(guard, host="attacker.example:8080")  # DNS rebinding
    assert status == 403 and "not a loopback name" in json.loads(body)["error"]


async def test_with_a_token_a_request_needs_the_bearer_or_the_cookie_the_login_sets():
    guard = Guard(app, TOKEN)
    status, sent, body = await call(guard)
    assert status == 401 and sent["www-authenticate"] == "Bearer" and "/?token=TOKEN" in json.loads(body)["error"]
    assert (await call(guard, authorization="Bearer wrong-token-of-some-length"))[0] == 403
    assert (await call(guard, authorization=f"Bearer {TOKEN}"))[:3:2] == (200, b"inside")
    assert (await call(guard, "/", query="token=wrong-token-of-some-length"))[0] == 403
    status, sent, _ = await call(guard, "/", query=f"token={TOKEN}")
    assert status == 303 and sent["location"] == "/"
    cookie = sent["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    value = cookie.split(";", 1)[0]
    assert (await call(guard, cookie=value))[0] == 200
    assert (await call(guard, cookie="choreo_console=forged"))[0] == 403
    assert (await call(guard, cookie='bad"cookie'))[0] == 401
