"""HTTPie's own tests, with switchboard where they expect httpbin (pytest-httpbin's
fixtures overridden: a conftest's fixtures win over a plugin's)."""
import os
import sys
import tempfile
from urllib.parse import urljoin

import pytest
from pytest_httpbin import certs

sys.path.insert(0, os.environ["SWITCHBOARD_INTEROP"])
from harness import Switchboard  # noqa: E402


class Row:
    """A switchboard row as pytest-httpbin's Server: `url`, `host`, `port`, `+ '/path'`."""

    def __init__(self, scheme, port):
        self.protocol = scheme
        self.host = "127.0.0.1"
        self.port = port
        self.url = f"{scheme}://127.0.0.1:{port}"

    def __add__(self, suffix):
        return self.url + suffix

    def __str__(self):
        return self.url

    def join(self, url):
        return urljoin(self.url, url)


@pytest.fixture(scope="session")
def _switchboard():
    # The HTTPS row presents pytest-httpbin's own certificate, which the suite trusts.
    folder = os.path.join(os.path.dirname(certs.where()), "")
    settings = (
        f'[tls]\ncert = "{folder}server.pem"\nkey = "{folder}server.key"\n'
    )
    with tempfile.TemporaryDirectory() as workdir:
        sb = Switchboard(os.environ["SWITCHBOARD"], workdir, services=("http", "https"), settings=settings)
        yield sb
        sb.stop()


@pytest.fixture(scope="session")
def httpbin(_switchboard):
    return Row("http", _switchboard.port("http"))


@pytest.fixture(scope="session")
def httpbin_secure(_switchboard):
    return Row("https", _switchboard.port("https"))


@pytest.fixture(scope="session", params=["http", "https"])
def httpbin_both(request, httpbin, httpbin_secure):
    return httpbin if request.param == "http" else httpbin_secure
