"""The shared HTTP client: submits are sent once, idempotent calls retried (Retry-After honoured), and every
download failure ends in a clear HostedError or a complete file, never a hang, never a partial file, never a
connection to a refused address. All against 127.0.0.1; waits are measured through an injected sleep."""

import email.utils
import socket
import time
from urllib.parse import urlsplit

import pytest
from fakes.generic_server import GenericServer, Reply, loopback_only, redirect

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted import base
from ltx2_anywhere.pipelines.hosted.base import HostedError, HttpClient

VIDEO = bytes(range(256)) * 1000  # 256 kB, several chunks


class Sleeps(list):
    """An injected sleep: records each wait instead of spending it."""

    def __call__(self, seconds):
        self.append(seconds)

    @property
    def total(self):
        return sum(self)


@pytest.fixture
def server():
    with GenericServer() as srv, loopback_only() as outside:
        yield srv
        assert outside == [], "a test connected outside 127.0.0.1"


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def http(sleeps):
    return HttpClient(allow_loopback=True, timeout=5.0, max_retries=3, backoff=0.01, stall_timeout=0.5, sleep=sleeps)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_hosted_error_is_an_l2a_error_and_never_shows_a_key(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "abcd-1234:supersecretvalue")
    err = HostedError("the server said: Key abcd-1234:supersecretvalue is bad (supersecretvalue)")
    assert isinstance(err, L2AError)
    assert "supersecretvalue" not in str(err) and "abcd-1234" not in str(err)


# -- API calls ---------------------------------------------------------------------------------------------------

def test_json_ok(server, http):
    server.route("GET", "/s", Reply(json={"status": "ok"}))
    assert http.json("GET", server.url("/s"), retry=True) == {"status": "ok"}


def test_retry_on_5xx_and_429_honours_retry_after(server, http, sleeps):
    server.route("GET", "/s", Reply(503, json={"detail": "busy"}), Reply(429, headers={"Retry-After": "2"}),
                 Reply(json={"ok": 1}))
    assert http.json("GET", server.url("/s"), retry=True) == {"ok": 1}
    assert server.count("GET", "/s") == 3
    assert sleeps.total >= 2.0 and sleeps.total < 2.0 + 0.01 * 2 + 1e-9  # backoff for the 503, exactly 2 s for the 429
    assert max(sleeps) <= 1.0  # sliced waits, so an interrupt is seen every second


def test_retry_after_http_date_and_cap(server, sleeps):
    http = HttpClient(allow_loopback=True, max_retries=2, backoff=0.01, retry_after_cap=3.0, sleep=sleeps)
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    server.route("GET", "/s", Reply(503, headers={"Retry-After": later}), Reply(json={}))
    http.json("GET", server.url("/s"), retry=True)
    assert sleeps.total == pytest.approx(3.0)  # an hour asked for, capped at the client's 3 s


def test_submit_is_never_retried(server, http):
    server.route("POST", "/submit", Reply(503, json={"detail": "overloaded"}), Reply(json={"id": "x"}))
    with pytest.raises(HostedError, match="HTTP 503.*overloaded") as refused:
        http.json("POST", server.url("/submit"), retry=False, json={"prompt": "p"})
    assert server.count("POST", "/submit") == 1 and not refused.value.maybe_accepted  # the provider said no
    server.route("POST", "/gateway", Reply(504, body=b"<html>gateway timeout</html>", content_type="text/html"))
    with pytest.raises(HostedError, match="HTTP 504.*may have accepted it, so it was not resent") as unknown:
        http.json("POST", server.url("/gateway"), retry=False, json={"prompt": "p"})
    assert unknown.value.maybe_accepted and server.count("POST", "/gateway") == 1  # the provider may never have said


def test_dropped_submit_says_it_may_have_been_accepted_and_is_not_resent(server, http):
    server.route("POST", "/submit", Reply(drop=True), Reply(json={"id": "x"}))
    with pytest.raises(HostedError, match="may have accepted it, so it was not resent") as err:
        http.json("POST", server.url("/submit"), retry=False, json={}, what="fal submit")
    assert server.count("POST", "/submit") == 1 and err.value.maybe_accepted


def test_submit_to_a_closed_port_says_nothing_was_sent(http):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(HostedError, match="nothing was sent") as err:
            http.request("POST", f"http://127.0.0.1:{port}/submit", retry=False)
        assert not err.value.maybe_accepted


def test_dropped_poll_is_retried(server, http):
    server.route("GET", "/s", Reply(drop=True), Reply(json={"state": "done"}))
    assert http.json("GET", server.url("/s"), retry=True) == {"state": "done"}
    assert server.count("GET", "/s") == 2


def test_retries_run_out_with_a_clear_error(server, http):
    server.route("GET", "/s", Reply(502, body=b"<html>nginx bad gateway</html>", content_type="text/html"))
    with pytest.raises(HostedError, match="after 4 attempts: HTTP 502.*server error") as err:
        http.json("GET", server.url("/s"), retry=True)
    assert "nginx" not in str(err.value)
    assert server.count() == 4
    assert err.value.status == 502


@pytest.mark.parametrize("body, detail", [
    ({"detail": [{"loc": ["body", "image_url"], "msg": "bad image", "type": "x"}]}, "image_url: bad image"),
    ({"type": "error", "error": {"type": "invalid_request_error", "message": "duration"}},
     "invalid_request_error: duration"),
    ({"code": 400, "message": "resolution must be 720p"}, "resolution must be 720p"),
])
def test_client_errors_are_not_retried_and_show_the_provider_detail(server, http, body, detail):
    server.route("POST", "/s", Reply(400, json=body, headers={"x-request-id": "req-9"}))
    with pytest.raises(HostedError) as err:
        http.json("POST", server.url("/s"), retry=True, json={})
    assert detail in str(err.value) and "req-9" in str(err.value)
    assert server.count() == 1


def test_401_hint_and_no_key_in_message(server, http, monkeypatch):
    monkeypatch.setenv("WAVESPEED_API_KEY", "ws-secret-key-123456")
    server.route("GET", "/s", Reply(401, json={"error": "invalid key ws-secret-key-123456"}))
    with pytest.raises(HostedError, match="API key was refused") as err:
        http.json("GET", server.url("/s"), retry=True, headers={"Authorization": "Bearer ws-secret-key-123456"})
    assert "ws-secret-key-123456" not in str(err.value)


def test_a_malformed_2xx_answer_is_retried_like_a_5xx(server, http, sleeps):
    """One corrupted status body must not end a paid job: same attempts and backoff as a 503."""
    server.route("GET", "/s", Reply(body=b'{"status": "IN_Q', content_type="application/json"),
                 Reply(body=b"<html>gateway</html>", content_type="text/html"), Reply(json={"status": "ok"}))
    assert http.json("GET", server.url("/s"), retry=True) == {"status": "ok"}
    server.route("GET", "/5xx", Reply(503), Reply(503), Reply(json={"status": "ok"}))
    malformed_waits = list(sleeps)
    sleeps.clear()
    http.json("GET", server.url("/5xx"), retry=True)
    assert len(malformed_waits) == len(sleeps) == 2
    assert all(0.5 * 0.01 * 2**i <= wait <= 0.01 * 2**i for i, wait in enumerate(malformed_waits))
    server.route("GET", "/list", Reply(json=[1, 2]))
    with pytest.raises(HostedError, match=r"malformed JSON 4 times \(HTTP 200, 6 bytes, starting '\[1, 2\]'\)"):
        http.json("GET", server.url("/list"), retry=True)
    assert server.count("GET", "/list") == 4


def test_a_malformed_answer_to_a_submit_is_never_resent(server, http):
    server.route("POST", "/submit", Reply(body=b'{"id": "j', content_type="application/json"), Reply(json={"id": "j"}))
    with pytest.raises(HostedError, match="may have accepted it, so it was not resent") as err:
        http.json("POST", server.url("/submit"), retry=False)
    assert err.value.maybe_accepted and server.count("POST", "/submit") == 1


def test_retried_upload_resends_the_whole_file(server, http, tmp_path):
    path = tmp_path / "frame.png"
    path.write_bytes(b"PNG" * 1000)
    server.route("PUT", "/up", Reply(503), Reply(json={"url": "u"}))
    with open(path, "rb") as fh:
        http.json("PUT", server.url("/up"), retry=True, data=fh)
    assert [len(seen.body) for seen in server.log] == [3000, 3000]


def test_interrupt_during_a_retry_wait(server, http):
    class Stop(Exception):
        pass

    def check():
        raise Stop

    server.route("GET", "/s", Reply(429, headers={"Retry-After": "30"}))
    with http.interruptible(check), pytest.raises(Stop):
        http.json("GET", server.url("/s"), retry=True)
    assert http.check_interrupt is None


# -- URL checks --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, why", [
    ("file:///etc/passwd", "only http and https"),
    ("ftp://example.com/x.mp4", "only http and https"),
    ("data:video/mp4;base64,AAAA", "only http and https"),
    ("http://10.0.0.1/x.mp4", "private"),
    ("http://192.168.1.5/x.mp4", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://224.0.0.1/x", "multicast"),
    ("http://0.0.0.0/x", "unspecified"),
    ("http://[::ffff:10.0.0.1]/x", "private"),
    ("http://100.64.0.1/x", "non-public"),
    ("http:///x", "names no host"),
])
def test_check_url_refuses(url, why):
    with loopback_only() as outside, pytest.raises(HostedError, match=why):
        HttpClient(allow_loopback=True).check_url(url)
    assert outside == []


def test_loopback_only_with_the_test_switch():
    with pytest.raises(HostedError, match="loopback"):
        HttpClient().check_url("http://127.0.0.1:8188/view")
    with pytest.raises(HostedError, match="loopback"):
        HttpClient().check_url("http://[::1]/x")
    HttpClient(allow_loopback=True).check_url("http://127.0.0.1:8188/view")
    HttpClient().check_url("https://8.8.8.8/video.mp4")  # a public literal: accepted, nothing resolved or contacted


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "cdn.example.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(base.socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(HostedError, match="resolves to 10.1.2.3, a private address"):
        HttpClient().check_url("https://cdn.example.test/v.mp4")


# -- downloads ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("urllib3_read1", [True, False], ids=["urllib3>=2.3", "older-urllib3"])
@pytest.mark.parametrize("chunked", [False, True])
def test_download_ok(server, http, tmp_path, chunked, urllib3_read1, monkeypatch):
    if not urllib3_read1:
        import urllib3.response

        for cls in (urllib3.response.HTTPResponse, urllib3.response.BaseHTTPResponse):
            monkeypatch.delattr(cls, "read1")  # what urllib3 before 2.3 lacks
    server.route("GET", "/v.mp4", Reply(body=VIDEO, content_type="video/mp4", pieces=4, chunked=chunked))
    progress = []
    dest = tmp_path / "out" / "v.mp4"
    assert http.download(server.url("/v.mp4"), dest, on_progress=lambda done, total: progress.append(total)) == dest
    assert dest.read_bytes() == VIDEO
    assert leftovers(dest.parent) == ["v.mp4"]
    assert progress and set(progress) == ({None} if chunked else {len(VIDEO)})
    assert server.log[0].headers.get("Accept-Encoding") == "identity"


def test_download_replaces_an_existing_file_only_when_complete(server, http, tmp_path):
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"old")
    server.route("GET", "/v.mp4", Reply(body=VIDEO, content_type="video/mp4", drop_after=1000))
    with pytest.raises(HostedError, match="after 4 attempts: the connection (dropped|closed) after"):
        http.download(server.url("/v.mp4"), dest)
    assert dest.read_bytes() == b"old" and leftovers(tmp_path) == ["v.mp4"]


def test_download_restarts_cleanly_after_a_drop_and_5xx(server, http, tmp_path, sleeps):
    server.route("GET", "/v.mp4", Reply(body=VIDEO, content_type="video/mp4", drop_after=5000),
                 Reply(503, headers={"Retry-After": "1"}), Reply(body=VIDEO, content_type="video/mp4"))
    dest = tmp_path / "v.mp4"
    http.download(server.url("/v.mp4"), dest)
    assert dest.read_bytes() == VIDEO and leftovers(tmp_path) == ["v.mp4"]
    assert server.count() == 3 and 1.0 in sleeps


@pytest.mark.parametrize("reply, message", [
    (Reply(body=VIDEO, content_type="video/mp4", length=10**9), "over the 100,000-byte limit"),
    (Reply(body=VIDEO, content_type="video/mp4", chunked=True, pieces=8), "larger than the 100,000-byte limit"),
    (Reply(body=b"<html>Access denied</html>", content_type="text/html"), "sent text/html, not video/"),
    (Reply(404, json={"detail": "gone"}), "HTTP 404. The result URL has expired"),
    (Reply(403, body=b"<Error>AccessDenied</Error>", content_type="application/xml"), "HTTP 403. The result URL"),
    (Reply(body=VIDEO[:90_000], content_type="video/mp4", pieces=2, stall=5.0), "stalled: no data for 0.5 s"),
    (Reply(body=VIDEO[:90_000], content_type="video/mp4", delay=5.0), "stalled: no answer for 0.5 s"),
])
def test_download_failures_are_clear_fast_and_leave_nothing(server, http, tmp_path, reply, message):
    server.route("GET", "/v.mp4", reply)
    started = time.monotonic()
    with pytest.raises(HostedError, match=message):
        http.download(server.url("/v.mp4"), tmp_path / "v.mp4", max_bytes=100_000)
    assert time.monotonic() - started < 3.0
    assert server.count() == 1, "refusals and stalls are not retried"
    assert leftovers(tmp_path) == []


def test_trickling_server_is_caught_by_the_wall_clock_between_chunks(server, http, tmp_path):
    http.min_progress = 4096  # takes many pieces; every piece arrives well within the socket timeout
    server.route("GET", "/v.mp4", Reply(body=VIDEO[:8192], content_type="video/mp4", pieces=64, gap=0.02))
    with pytest.raises(HostedError, match="stalled: the server sent less than 4,096 bytes in"):
        http.stall_timeout = 0.3
        http.download(server.url("/v.mp4"), tmp_path / "v.mp4")
    assert leftovers(tmp_path) == []


def test_content_types_can_be_widened(server, http, tmp_path):
    server.route("GET", "/a.json", Reply(json={"ok": True}))
    http.download(server.url("/a.json"), tmp_path / "a.json", content_types=("application/json",))
    assert (tmp_path / "a.json").read_bytes() == b'{"ok": true}'


def test_download_follows_redirects_and_drops_credentials_across_hosts(tmp_path, sleeps):
    http = HttpClient(allow_loopback=True, max_retries=0, sleep=sleeps)
    with GenericServer() as api, GenericServer() as cdn, loopback_only() as outside:
        api.route("POST", "/jobs/1/download", redirect("/jobs/1/file", 303))
        api.route("GET", "/jobs/1/file", redirect(cdn.url("/v.mp4"), 307))
        cdn.route("GET", "/v.mp4", Reply(body=VIDEO, content_type="video/mp4"))
        http.download(api.url("/jobs/1/download"), tmp_path / "v.mp4", method="POST", json={"a": 1},
                      headers={"Authorization": "Bearer secret-token-1"})
        assert outside == []
    assert (tmp_path / "v.mp4").read_bytes() == VIDEO
    assert [s.method for s in api.log] == ["POST", "GET"]  # 303 turns the POST into a GET
    assert api.log[1].headers.get("Authorization") == "Bearer secret-token-1"  # same host keeps it
    assert "Authorization" not in cdn.log[0].headers  # another host never sees it


@pytest.mark.parametrize("location, why", [
    ("file:///etc/passwd", "only http and https"),
    ("http://10.0.0.1:8080/v.mp4", "10.0.0.1, a private address"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("ftp://example.com/v.mp4", "only http and https"),
])
def test_redirect_to_a_refused_url_is_refused_before_connecting(server, http, tmp_path, location, why):
    server.route("GET", "/v.mp4", redirect(location))
    with loopback_only() as outside, pytest.raises(HostedError, match=why):
        http.download(server.url("/v.mp4"), tmp_path / "v.mp4")
    assert outside == [], "the refused address was contacted"
    assert server.count() == 1 and leftovers(tmp_path) == []


def test_too_many_redirects(server, http, tmp_path):
    for hop in range(7):
        server.route("GET", f"/r{hop}", redirect(f"/r{hop + 1}"))
    with pytest.raises(HostedError, match="more than 5 redirects"):
        http.download(server.url("/r0"), tmp_path / "v.mp4")
    assert server.count() == 6 and leftovers(tmp_path) == []


def test_download_refuses_loopback_without_the_test_switch(server, tmp_path):
    server.route("GET", "/v.mp4", Reply(body=VIDEO, content_type="video/mp4"))
    with pytest.raises(HostedError, match="loopback"):
        HttpClient().download(server.url("/v.mp4"), tmp_path / "v.mp4")
    assert server.count() == 0


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused_at_connect(server, tmp_path, monkeypatch):
    """DNS rebinding: the name answers a public address to the check and loopback to the connection."""
    server.route("GET", "/v.mp4", Reply(body=VIDEO, content_type="video/mp4"))
    port = urlsplit(server.url("/")).port
    real_getaddrinfo = socket.getaddrinfo
    answers = []

    def rebinding(host, *args, **kwargs):
        if host != "cdn.rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        answers.append("93.184.215.14" if not answers else "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answers[-1], port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(HostedError, match=r"reached 127\.0\.0\.1, a loopback address"):
        HttpClient(max_retries=0).download(f"http://cdn.rebind.test:{port}/v.mp4", tmp_path / "v.mp4")
    assert answers == ["93.184.215.14", "127.0.0.1"], "checked once, then connected once"
    assert server.count() == 0 and leftovers(tmp_path) == []


def test_interrupt_during_a_download_leaves_nothing(server, http, tmp_path):
    class Stop(Exception):
        pass

    calls = []

    def check():
        calls.append(1)
        if len(calls) == 2:
            raise Stop

    http.chunk_size = 4096
    server.route("GET", "/v.mp4", Reply(body=VIDEO, content_type="video/mp4"))
    with http.interruptible(check), pytest.raises(Stop):
        http.download(server.url("/v.mp4"), tmp_path / "v.mp4")
    assert leftovers(tmp_path) == []
