"""Launch `phoenix serve` with its OTLP/gRPC receiver bound to 127.0.0.1 instead of [::].

Phoenix 20.26.1 hard-codes server.add_insecure_port(f"[::]:{port}") in
phoenix/server/grpc_server.py (PHOENIX_HOST only affects the HTTP server).
This wrapper rewrites the "[::]:" host to "127.0.0.1:" before Phoenix starts.
usage: python phoenix_loopback.py serve
"""
import sys

import grpc.aio._server as _aio_server

_orig_insecure = _aio_server.Server.add_insecure_port
_orig_secure = _aio_server.Server.add_secure_port


def _loopback(address: str) -> str:
    return "127.0.0.1:" + address[len("[::]:"):] if address.startswith("[::]:") else address


def _add_insecure_port(self, address):  # type: ignore[no-untyped-def]
    return _orig_insecure(self, _loopback(address))


def _add_secure_port(self, address, credentials):  # type: ignore[no-untyped-def]
    return _orig_secure(self, _loopback(address), credentials)


_aio_server.Server.add_insecure_port = _add_insecure_port
_aio_server.Server.add_secure_port = _add_secure_port

from phoenix.server.main import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "phoenix"
    sys.exit(main())
