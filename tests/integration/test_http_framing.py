"""HTTP/1.1 framing that RFC 9112 says to refuse (red-team pass 2, finding
04): a proxy in front may frame such a request differently from us, which
is how requests are smuggled. Raw sockets, so that nothing tidies them."""
import json
import socket

import pytest

from daemon_helpers import Daemon

BODY = json.dumps({"code": "print(1)"}).encode()


@pytest.fixture(scope="module")
def daemon():
    d = Daemon("--rate-limit", 0).start()
    yield d
    assert d.stop() == 0, d.stderr_text()


def exchange(port, head, body=BODY):
    """Sends the request line and headers `head` (lines, without CRLFs) and
    body; returns (status, the whole answer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(("\r\n".join(["POST /run HTTP/1.1", "Host: x", "Content-Type: application/json",
                                 "Connection: close"] + head) + "\r\n\r\n").encode("latin-1") + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return int(data.split(b" ", 2)[1]), data


def chunked(body):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


REFUSED = {
    "two Content-Length": (["Content-Length: %d" % len(BODY), "Content-Length: 3"], BODY),
    "the same Content-Length twice": (["Content-Length: %d" % len(BODY)] * 2, BODY),
    "space before the colon": (["Transfer-Encoding : chunked", "Content-Length: %d" % len(BODY)], BODY),
    "obs-fold": (["Content-Length: %d" % len(BODY), " 0"], BODY),
    "obs-fold of the whole value": (["Content-Length:", " %d" % len(BODY)], BODY),
    "control character": (["Content-Length: %d" % len(BODY), "X-Note: a\x01b"], BODY),
    "Transfer-Encoding other than chunked": (["Transfer-Encoding: gzip, chunked"], chunked(BODY)),
    "Content-Length with a sign": (["Content-Length: +%d" % len(BODY)], BODY),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_framing_that_rfc_9112_refuses_is_400(daemon, case):
    head, body = REFUSED[case]
    status, data = exchange(daemon.port, head, body)
    # Ours has a JSON detail; evhttp refuses some itself, in HTML.
    assert status == 400 and b'"stdout"' not in data, data


@pytest.mark.parametrize("head,body", [
    (["Content-Length: %d" % len(BODY)], BODY),
    (["Transfer-Encoding: chunked"], chunked(BODY)),
    (["Transfer-Encoding: Chunked", "X-Tab: a\tb"], chunked(BODY)),
], ids=["content-length", "chunked", "chunked-any-case-and-a-tab"])
def test_plain_framing_is_served(daemon, head, body):
    status, data = exchange(daemon.port, head, body)
    assert status == 200 and b'"stdout":"1\\n"' in data, data
