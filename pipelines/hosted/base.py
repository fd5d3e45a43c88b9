"""The HTTP every provider shares: submits sent once, idempotent calls retried, downloads that cannot be misused.

Why not requests' defaults: no provider has an idempotent submit, so a resent submit bills twice (ComfyUI#16204);
result URLs come from a provider's JSON, so a download must not be steerable to a local file, the cloud metadata
address or the user's LAN; and a CDN that stalls or serves a huge file must not hang ComfyUI or fill its disk.
Every message names what failed and what to do, and passes through `keys.redact`, so no API key ever leaks.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib
import ipaddress
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from ..errors import L2AError
from . import keys


class _Lazy:
    """A module imported on first attribute use: `requests` alone costs ComfyUI ~130 ms at start-up, when the
    hosted node only lists endpoints."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


requests = _Lazy("requests")
urllib3_exceptions = _Lazy("urllib3.exceptions")

VIDEO_TYPES = ("video/", "application/octet-stream", "binary/octet-stream")
MAX_REDIRECTS = 5
GATEWAY_TIMEOUTS = (502, 504)  # a gateway's answer: the request may have reached the provider behind it
NOT_RESENT = ("The provider may have accepted it, so it was not resent (a resend could bill twice): check the "
              "provider's dashboard for a new job before trying again.")
_HINTS = {
    400: "the provider rejected the request; check the values named above",
    401: "the API key was refused: check the provider's key (environment variable or the pack's keys file)",
    402: "the account has no credit left: top it up at the provider",
    403: "access was refused: check the key and that the account may use this model (some providers need a top-up "
         "first)",
    404: "the provider does not know this URL or job (it may have expired)",
    409: "the job is not finished yet",
    413: "the request is too large for the provider",
    422: "the provider rejected the input values",
    429: "the provider is rate limiting this account: wait a little and try again",
}
_EXPIRED = "the result URL has expired or is no longer accessible; results must be fetched soon after the job ends"


class HostedError(L2AError):
    """A network or provider failure, told as what failed and what to do; never contains an API key.

    `maybe_accepted` marks a submit whose outcome is unknown (sent, but no readable answer with a job id): the
    provider may have created a billable job, so it must not be sent again automatically."""

    def __init__(self, message: str, *, status: int | None = None, maybe_accepted: bool = False):
        super().__init__(keys.redact(message))
        self.status = status  # the final HTTP status, when there was one (e.g. 404 = expired, 409 = not ready)
        self.maybe_accepted = maybe_accepted


class _Retryable(Exception):
    """One download attempt failed in a way a fresh attempt may fix."""

    def __init__(self, reason: str, *, status: int | None = None, delay: float | None = None):
        super().__init__(reason)
        self.reason, self.status, self.delay = reason, status, delay


def _display(url: str) -> str:
    """A URL fit for a message: scheme, host and path only (query strings often carry signed tokens)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return f"a {parts.scheme or 'scheme-less'}: URL"
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    path = parts.path if len(parts.path) <= 100 else parts.path[:97] + "..."
    return f"{parts.scheme}://{host}{port}{path}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _retryable_status(code: int) -> bool:
    return code in (408, 429) or 500 <= code <= 599


def _json_object(resp: requests.Response) -> dict | None:
    """The body as a JSON object, or None when it is not one (truncated, HTML, a list, empty)."""
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _retry_after(resp: requests.Response) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(resp: requests.Response) -> str:
    """The provider's own explanation from an error body: JSON detail/error/message, else short plain text."""
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        return "" if not text or text.startswith("<") else text[:300]
    if not isinstance(body, dict):
        return str(body)[:300]
    for key in ("detail", "error", "message", "msg"):
        value = body.get(key)
        if value:
            return _describe(value)[:300]
    return ""


def _describe(value) -> str:
    if isinstance(value, dict):
        message = value.get("message") or value.get("msg") or value.get("detail") or ""
        kind = value.get("type") or ""
        return f"{kind}: {message}" if kind and message else str(message or kind or value)
    if isinstance(value, list):  # fal/pydantic: [{"loc": ["body", "image_url"], "msg": ..., "type": ...}]
        items = []
        for item in value:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                items.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", item)))
            else:
                items.append(str(item))
        return "; ".join(items)
    return str(value)


def _request_id(resp: requests.Response) -> str:
    rid = resp.headers.get("x-request-id") or resp.headers.get("x-fal-request-id")
    return f" (request id {rid})" if rid else ""


def _http_error(what: str, resp: requests.Response, attempts: int) -> HostedError:
    code = resp.status_code
    detail = _detail(resp)
    hint = _HINTS.get(code) or ("the provider had a server error: try again later" if code >= 500 else "")
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    text = f"{what} failed{tried}: HTTP {code} {resp.reason or ''}".rstrip()
    text += f": {detail}" if detail else ""
    return HostedError(text + _request_id(resp) + "." + _sentence(hint), status=code)


def _sentence(hint: str) -> str:
    """' Hint.' appended to a message, or nothing."""
    return f" {hint[:1].upper()}{hint[1:]}." if hint else ""


def _never_connected(err: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (so nothing can have been accepted)."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, urllib3_exceptions.NewConnectionError)


def _stalled(err: Exception) -> bool:
    """True for a socket read timeout (urllib3's own error, or requests' wrapping of it)."""
    inner = err.args[0] if err.args else None
    return isinstance(err, (requests.ReadTimeout, urllib3_exceptions.ReadTimeoutError)) or isinstance(
        inner, urllib3_exceptions.ReadTimeoutError)


def _rewind_points(data, files) -> list[tuple[object, int]]:
    """File objects in a body and where they start, so a retried upload resends them from the beginning."""
    pending = [data, *(files.values() if isinstance(files, dict) else files or ())]
    points = []
    while pending:
        obj = pending.pop()
        if isinstance(obj, (tuple, list)):  # ("name", fileobj, "type") and [("field", (...))] forms
            pending.extend(obj)
        elif hasattr(obj, "seek") and hasattr(obj, "tell"):
            points.append((obj, obj.tell()))
    return points


def _peer_checking_adapter(address_problem: Callable[[object], str | None]):
    """A requests adapter whose connections check the address they actually reached, not only the one the name
    resolved to a moment before: a name that answers public to `check_url` and private to the connection (DNS
    rebinding) must not reach the LAN. Connections through a proxy reach the proxy, which resolves the name itself,
    so they are left to `check_url`."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class PeerChecked:
        def _new_conn(self):
            sock = super()._new_conn()
            if self.proxy is None:
                peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
                problem = address_problem(peer)
                if problem:
                    sock.close()
                    raise HostedError(f"Refused to download from {self.host}: the connection reached {peer}, a "
                                      f"{problem} address, though the name resolved to a public one just before. "
                                      "Result URLs must point to the public internet.")
            return sock

    class CheckedHTTPConnection(PeerChecked, HTTPConnection):
        pass

    class CheckedHTTPSConnection(PeerChecked, HTTPSConnection):
        pass

    class CheckedHTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTPConnection

    class CheckedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPSConnection

    class PeerCheckingAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": CheckedHTTPPool, "https": CheckedHTTPSPool}

    return PeerCheckingAdapter()


class HttpClient:
    """requests with the pack's rules; one per provider call chain (tests: `HttpClient(allow_loopback=True)`).

    `sleep` and `retry_after_cap` are injectable so tests measure waits without spending them.
    `check_interrupt` (set for a job by `interruptible`) is called every second while waiting or downloading.
    """

    def __init__(self, *, allow_loopback: bool = False, timeout: float = 30.0, max_retries: int = 5,
                 backoff: float = 0.5, max_download_bytes: int = 8 * 2**30, stall_timeout: float = 60.0,
                 retry_after_cap: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        self.allow_loopback = allow_loopback
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_download_bytes = max_download_bytes
        self.stall_timeout = stall_timeout
        self.retry_after_cap = retry_after_cap
        self.sleep = sleep
        self.chunk_size = 2**20  # the most one read takes from the socket
        self.min_progress = 64 * 1024  # a download that gets less than this in `stall_timeout` seconds has stalled
        self.check_interrupt: Callable[[], None] | None = None
        self.session = requests.Session()
        self.download_session = requests.Session()  # result URLs come from the provider: see _peer_checking_adapter
        adapter = _peer_checking_adapter(self._address_problem)
        for scheme in ("http://", "https://"):
            self.download_session.mount(scheme, adapter)

    @contextlib.contextmanager
    def interruptible(self, check_interrupt: Callable[[], None] | None):
        """Within the block, retry waits and downloads call `check_interrupt` at least once a second."""
        previous, self.check_interrupt = self.check_interrupt, check_interrupt
        try:
            yield self
        finally:
            self.check_interrupt = previous

    # -- waiting -------------------------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter (so many clients rejected together do not return together)."""
        return min(self.retry_after_cap, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    def _delay(self, attempt: int, resp: requests.Response) -> float:
        after = _retry_after(resp)
        return self._backoff(attempt) if after is None else min(after, self.retry_after_cap)

    def _wait(self, seconds: float) -> None:
        """Sleep in slices of at most a second, checking for an interrupt between them."""
        while seconds > 0:
            if self.check_interrupt:
                self.check_interrupt()
            step = min(1.0, seconds)
            self.sleep(step)
            seconds -= step
        if self.check_interrupt:
            self.check_interrupt()

    # -- API calls -----------------------------------------------------------------------------------------------

    def request(self, method: str, url: str, *, retry: bool, headers=None, json=None, data=None, files=None,
                params=None, timeout: float | None = None, what: str | None = None,
                expect_json: bool = False) -> requests.Response:
        """One API call. `retry=True` only for idempotent calls (status, result, download): 408/429/5xx,
        connection errors and, with `expect_json`, a 2xx body that is not a JSON object (one corrupted answer)
        are retried with backoff, honouring Retry-After. `retry=False` (submits) sends once. A final HTTP status
        >= 400 raises HostedError with the provider's detail. `what` names the call."""
        what = what or f"{method} {_display(url)}"
        attempts = 1 + self.max_retries if retry else 1
        rewind = _rewind_points(data, files)
        for attempt in range(attempts):
            for obj, pos in rewind:
                obj.seek(pos)
            try:
                resp = self.session.request(method, url, headers=headers, json=json, data=data, files=files,
                                            params=params, timeout=timeout or self.timeout)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
                if not retry:
                    raise HostedError(self._unsent_message(what, err), maybe_accepted=not _never_connected(err)) \
                        from err
                if attempt == attempts - 1:
                    raise HostedError(f"{what} failed after {attempts} attempts: could not reach the provider "
                                      f"({type(err).__name__}). Check the network and try again later.") from err
                self._wait(self._backoff(attempt))
                continue
            except requests.RequestException as err:  # a malformed URL or header: retrying cannot help
                raise HostedError(f"{what} could not be sent: {err}.") from err
            if resp.status_code < 400:
                if not expect_json or _json_object(resp) is not None:
                    return resp
                if retry and attempt < attempts - 1:
                    self._wait(self._delay(attempt, resp))
                    continue
                raise self._malformed(what, resp, attempt + 1, retry)
            if retry and _retryable_status(resp.status_code) and attempt < attempts - 1:
                self._wait(self._delay(attempt, resp))
                continue
            error = _http_error(what, resp, attempt + 1)
            if not retry and resp.status_code in GATEWAY_TIMEOUTS:
                raise HostedError(f"{error} {NOT_RESENT}", status=error.status, maybe_accepted=True)
            raise error
        raise AssertionError("unreachable: the last attempt returns or raises")

    @staticmethod
    def _malformed(what: str, resp: requests.Response, attempts: int, retry: bool) -> HostedError:
        start = resp.text[:60].replace("\n", " ")
        tried = f" {attempts} times" if attempts > 1 else ""
        text = (f"{what} returned malformed JSON{tried} (HTTP {resp.status_code}, {len(resp.content)} bytes, starting "
                f"{start!r}): ")
        if retry:
            return HostedError(text + "the provider may be having trouble; try again later.")
        return HostedError(text + NOT_RESENT, maybe_accepted=True)

    def _unsent_message(self, what: str, err: requests.RequestException) -> str:
        if _never_connected(err):
            return (f"{what} failed: could not connect ({type(err).__name__}); nothing was sent. Check the network "
                    "and the provider's address, then try again.")
        return (f"{what} failed: the connection broke or timed out after the request was sent "
                f"({type(err).__name__}). {NOT_RESENT}")

    def json(self, method: str, url: str, *, retry: bool, **kwargs) -> dict:
        """`request` a JSON object (a malformed answer is retried where `retry` allows, as `request` says)."""
        return self.request(method, url, retry=retry, expect_json=True, **kwargs).json()

    # -- downloads -----------------------------------------------------------------------------------------------

    def check_url(self, url: str) -> None:
        """Refuse (HostedError) a URL `download` would refuse: not http(s), or a host that resolves to any
        private, loopback, link-local, multicast, reserved or unspecified address. Checked before connecting."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise HostedError(f"Refused to download {_display(url)}: only http and https URLs are fetched. The "
                              "provider returned an unexpected result URL; report it to the provider.")
        try:
            host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
        except ValueError as err:
            raise HostedError(f"Refused to download {_display(url)}: the port is not valid.") from err
        if not host:
            raise HostedError(f"Refused to download {_display(url)}: it names no host.")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as err:
            raise HostedError(f"Cannot download from {host}: the name does not resolve ({err}). Check the "
                              "network.") from err
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            problem = self._address_problem(address)
            if problem:
                raise HostedError(f"Refused to download {_display(url)}: {host} resolves to {address}, a {problem} "
                                  "address. Result URLs must point to the public internet.")

    def _address_problem(self, address) -> str | None:
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        if address.is_loopback:
            return None if self.allow_loopback else "loopback"
        for problem in ("unspecified", "link_local", "multicast", "private", "reserved"):
            if getattr(address, f"is_{problem}"):
                return problem.replace("_", "-")
        return None if address.is_global else "non-public"

    def download(self, url: str, dest: Path, *, headers=None, method: str = "GET", json=None,
                 content_types=VIDEO_TYPES, max_bytes: int | None = None, limit_reason: str = "",
                 on_progress: Callable[[int, int | None], None] | None = None, what: str | None = None) -> Path:
        """Stream `url` to `dest` atomically (hidden `.<name>.<random>.part` beside it, renamed when complete).

        Every hop is checked by `check_url` before connecting (at most 5 redirects, credentials dropped when the
        host changes); Content-Type must match `content_types` (an empty tuple accepts any); the limit (`max_bytes`,
        never above the client's own cap; `limit_reason` says where it comes from) applies to Content-Length
        before any byte is read and to the bytes streamed; no bytes for `stall_timeout` seconds (socket read
        timeout, or the wall clock between chunks) aborts. 408/429/5xx and dropped connections restart the
        download cleanly. Nothing partial is ever left at or beside `dest`.
        """
        dest = Path(dest)
        cap = min(max_bytes, self.max_download_bytes) if max_bytes else self.max_download_bytes
        limit = f"the {cap:,}-byte limit" + (f" ({limit_reason})" if limit_reason and cap == max_bytes else "")
        what = what or f"Download of {_display(url)}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        attempts = 1 + self.max_retries
        for attempt in range(attempts):
            try:
                return self._download_once(url, dest, headers, method, json, content_types, (cap, limit),
                                           on_progress, what)
            except _Retryable as err:
                if attempt == attempts - 1:
                    raise HostedError(f"{what} failed after {attempts} attempts: {err.reason}. Try again later "
                                      "(the job's result may still be fetchable by resuming it).",
                                      status=err.status) from err
                self._wait(self._backoff(attempt) if err.delay is None else min(err.delay, self.retry_after_cap))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _open(self, url, headers, method, json, what) -> requests.Response:
        """Send the request, following redirects by hand so that every hop is checked before connecting."""
        headers = {"Accept-Encoding": "identity", **(headers or {})}  # bytes on the wire = bytes on disk
        for _hop in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            try:
                resp = self.download_session.request(method, url, headers=headers, json=json, stream=True,
                                                     allow_redirects=False,
                                                     timeout=(self.timeout, self.stall_timeout))
            except requests.RequestException as err:
                if _stalled(err):
                    raise HostedError(f"{what} stalled: no answer for {self.stall_timeout:g} s.") from err
                if isinstance(err, (requests.ConnectionError, requests.Timeout)):
                    raise _Retryable(f"could not reach the server ({type(err).__name__})") from err
                raise HostedError(f"{what} could not be sent: {err}.") from err
            if not resp.is_redirect:
                return resp
            location = resp.headers["Location"]
            resp.close()
            following = urljoin(url, location)
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method != "HEAD"):
                method, json = "GET", None
            if _origin(following) != _origin(url):
                headers = {"Accept-Encoding": "identity"}  # never carry credentials to another host
            url = following
        raise HostedError(f"{what} failed: more than {MAX_REDIRECTS} redirects.")

    def _download_once(self, url, dest, headers, method, json, content_types, limit, on_progress, what) -> Path:
        cap, limit_text = limit
        resp = self._open(url, headers, method, json, what)
        with contextlib.closing(resp):
            code = resp.status_code
            if code >= 400:
                if _retryable_status(code):
                    raise _Retryable(f"HTTP {code}", status=code, delay=_retry_after(resp))
                hint = _EXPIRED if code in (403, 404, 410) else _HINTS.get(code, "")
                raise HostedError(f"{what} failed: HTTP {code}." + _sentence(hint), status=code)
            if code >= 300 or code < 200:
                raise HostedError(f"{what} failed: unexpected HTTP {code}.", status=code)
            ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if content_types and ctype and not any(
                    ctype.startswith(t) if t.endswith("/") else ctype == t for t in content_types):
                raise HostedError(f"{what} failed: the server sent {ctype}, not {' or '.join(content_types)}. The "
                                  "result URL may have expired or lead to an error page.")
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > cap:
                raise HostedError(f"{what} refused before reading: the file is {total:,} bytes, over {limit_text}.")
            return self._stream(resp, dest, total, limit, on_progress, what)

    def _body(self, resp):
        """The body as it arrives: `read1` hands over what the socket holds (up to `chunk_size`) as soon as anything
        does, so reads are large while data flows and the stall clock still ticks while it trickles. urllib3
        before 2.3 lacks it: there, each chunk waits until it is full."""
        if not hasattr(resp.raw, "read1"):
            yield from resp.iter_content(self.chunk_size)
            return
        while chunk := resp.raw.read1(self.chunk_size, decode_content=True):
            yield chunk

    def _stream(self, resp, dest: Path, total, limit, on_progress, what, interruptible: bool = True) -> Path:
        cap, limit_text = limit
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        done = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                progressed_at, progressed = time.monotonic(), 0
                try:
                    for chunk in self._body(resp):
                        now = time.monotonic()
                        if now - progressed_at > self.stall_timeout:
                            raise HostedError(f"{what} stalled: the server sent less than {self.min_progress:,} "
                                              f"bytes in {now - progressed_at:.0f} s (limit "
                                              f"{self.stall_timeout:g} s).")
                        done += len(chunk)
                        if done - progressed >= self.min_progress:
                            progressed_at, progressed = now, done
                        if done > cap:
                            raise HostedError(f"{what} refused while reading: the file is larger than {limit_text}; "
                                              "what arrived was deleted.")
                        fh.write(chunk)
                        if on_progress:
                            on_progress(done, total)
                        if self.check_interrupt and interruptible:
                            self.check_interrupt()
                except (requests.RequestException, urllib3_exceptions.HTTPError) as err:
                    if _stalled(err):
                        raise HostedError(f"{what} stalled: no data for {self.stall_timeout:g} s after "
                                          f"{done:,} bytes.") from err
                    raise _Retryable(f"the connection dropped after {done:,} bytes") from err
            if total is not None and done != total:
                raise _Retryable(f"the connection closed after {done:,} of {total:,} bytes")
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return dest

    # -- synchronous APIs ----------------------------------------------------------------------------------------

    def send_for_file(self, url: str, dest: Path, *, headers=None, json=None, wait_s: float, max_bytes: int | None,
                      limit_reason: str = "", what: str, lost: str = "") -> tuple[Path, Mapping[str, str]]:
        """One POST whose answer body is the result file (a synchronous API such as the LTX API's v1 retake).

        Sent exactly once and never resent; the answer is waited for up to `wait_s` seconds while this thread checks
        `check_interrupt` every second (the request runs beside it, so a Cancel is seen at once; the provider still
        renders and bills); the body is streamed to `dest` atomically within `max_bytes` (the client's cap at
        most). A failure before anything was sent is a plain HostedError; after sending, it is marked
        `maybe_accepted` and says `lost` (why the answer cannot be fetched again). Returns (file, answer headers).
        """
        dest = Path(dest)
        cap = min(max_bytes, self.max_download_bytes) if max_bytes else self.max_download_bytes
        limit = f"the {cap:,}-byte limit" + (f" ({limit_reason})" if limit_reason and cap == max_bytes else "")
        state = {"finished": False, "abandoned": False}
        lock, done = threading.Lock(), threading.Event()

        def work():
            try:
                value = self._send_once_for_file(url, dest, headers, json, wait_s, (cap, limit), what, lost)
            except BaseException as error:  # handed to the waiting thread, which raises it
                value, state["error"] = None, error
            with lock:
                state["finished"], state["value"] = True, value
                if state["abandoned"] and value is not None:
                    value[0].unlink(missing_ok=True)
            done.set()

        threading.Thread(target=work, name="l2a-synchronous-request", daemon=True).start()
        give_up = time.monotonic() + wait_s + self.timeout + 5.0
        try:
            while not done.wait(1.0):
                if self.check_interrupt:
                    self.check_interrupt()
                if time.monotonic() > give_up:
                    raise HostedError(f"{what}: no answer within {wait_s:g} s. {lost} {NOT_RESENT}",
                                      maybe_accepted=True)
        except BaseException:
            with lock:  # an answer arriving from now on is dropped: nothing is left half-owned at `dest`
                state["abandoned"] = True
                if state["finished"] and state.get("value") is not None:
                    state["value"][0].unlink(missing_ok=True)
            raise
        if "error" in state:
            raise state["error"]
        return state["value"]

    def _send_once_for_file(self, url, dest, headers, json, wait_s, limit, what, lost) -> tuple[Path, dict]:
        cap, limit_text = limit
        headers = {"Accept-Encoding": "identity", **(headers or {})}

        def after_sending(reason: str, status: int | None = None) -> HostedError:
            return HostedError(f"{what} failed after it was sent: {reason}. {lost} {NOT_RESENT}".replace("  ", " "),
                               status=status, maybe_accepted=True)

        try:
            resp = self.session.request("POST", url, headers=headers, json=json, stream=True, allow_redirects=False,
                                        timeout=(self.timeout, wait_s))
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            if _never_connected(err):
                raise HostedError(self._unsent_message(what, err)) from err
            reason = f"no answer within {wait_s:g} s" if _stalled(err) else \
                f"the connection broke or timed out ({type(err).__name__})"
            raise after_sending(reason) from err
        except requests.RequestException as err:
            raise HostedError(f"{what} could not be sent: {err}.") from err
        with contextlib.closing(resp):
            code = resp.status_code
            if code >= 400:
                error = _http_error(what, resp, 1)
                if code in GATEWAY_TIMEOUTS:
                    raise HostedError(f"{error} {lost} {NOT_RESENT}", status=code, maybe_accepted=True)
                raise error
            ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if code >= 300 or not any(ctype.startswith(t) if t.endswith("/") else ctype == t for t in VIDEO_TYPES):
                raise after_sending(f"HTTP {code} with {ctype or 'no content type'} instead of the video", code)
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > cap:
                raise after_sending(f"the answer is {total:,} bytes, over {limit_text}; nothing was kept")
            try:
                path = self._stream(resp, dest, total, limit, None, what, interruptible=False)
            except _Retryable as err:
                raise after_sending(err.reason) from err
            except HostedError as err:
                raise after_sending(str(err).removeprefix(f"{what} ").rstrip(".")) from err
            return path, resp.headers
