import socket
import threading
from unittest import mock

import pytest

from webhooks.addresses import AddressRefused, parse, refusal, resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8080/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fc00::1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://localhost:8000/hook",  # a host name that resolves to 127.0.0.1
    ],
)
def test_it_refuses_addresses_that_are_not_public(url):
    with pytest.raises(AddressRefused, match="public addresses only"):
        resolve(url)
    assert resolve(url, allow_private=True).addresses  # unless staff allowed it


def test_it_refuses_a_name_with_one_private_address_among_public_ones():
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443)),
    ]
    with (
        mock.patch("socket.getaddrinfo", return_value=answers),
        pytest.raises(AddressRefused, match=r"10\.0\.0\.7"),
    ):
        resolve("https://hooks.example.com/x")


def test_it_accepts_a_public_address_and_keeps_what_it_checked():
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]
    with mock.patch("socket.getaddrinfo", return_value=answers):
        target = resolve("https://hooks.example.com/in?x=1")
    assert target.addresses == ("93.184.215.14",) and target.path == "/in?x=1"
    assert target.host_header == "hooks.example.com" and target.port == 443


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "only http"),
        ("file:///etc/passwd", "only http"),
        ("gopher://example.com/", "only http"),
        ("http:///nohost", "no host"),
        ("https://user:pass@example.com/", "no user name"),
        ("http://example.com:99999/", "not a valid URL"),
        ("example.com/hook", "only http"),
    ],
)
def test_it_refuses_urls_it_cannot_use(url, reason):
    with pytest.raises(AddressRefused, match=reason):
        parse(url)


def test_it_refuses_a_host_that_does_not_resolve():
    with pytest.raises(AddressRefused, match="cannot be resolved"):
        resolve("http://no-such-host.invalid/hook")


def test_it_names_why_an_address_is_refused():
    assert refusal("8.8.8.8") == ""
    assert refusal("127.0.0.1") == refusal("::ffff:127.0.0.1") == "a loopback address"
    assert refusal("169.254.169.254") == "a link-local address"
    assert refusal("10.0.0.1") == "a private address"
    assert refusal("100.64.0.1") == "not a public address"
    with pytest.raises(AddressRefused, match=r"^10\.0\.0\.1 is a private address: webhooks go"):
        resolve("http://10.0.0.1/")
    with pytest.raises(
        AddressRefused, match=r"^localhost resolves to (127\.0\.0\.1|::1), a loopback address"
    ):
        resolve("http://localhost/")


def test_it_gives_up_on_a_host_whose_lookup_never_answers(monkeypatch):
    answer = threading.Event()

    def never_answers(host, port, *args, **kwargs):
        answer.wait(30)  # a resolver that hangs (let go when the test ends)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", never_answers)
    try:
        with pytest.raises(AddressRefused, match=r"slow\.example did not resolve within 0\.2 s"):
            resolve("https://slow.example/in", timeout=0.2)
    finally:
        answer.set()


def test_it_passes_on_what_the_lookup_raised(monkeypatch):
    def fails(host, port, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fails)
    with pytest.raises(AddressRefused, match=r"nowhere\.example cannot be resolved: .*not known"):
        resolve("https://nowhere.example/in")
