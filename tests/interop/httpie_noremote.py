"""A pytest plugin for the HTTPie suite (httpie_suite.py): nothing but loopback resolves, so
no test reaches or even looks up a name elsewhere (pie.dev: those tests skip)."""
import socket

_resolve = socket.gethostbyname


def _loopback_only(name):
    if name in ("localhost", "127.0.0.1", "::1"):
        return _resolve(name)
    raise OSError(f"{name}: nothing beyond loopback resolves in this run")


socket.gethostbyname = _loopback_only
