"""uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection.

asyncio turns Nagle's algorithm off only for sockets whose `proto` is IPPROTO_TCP. With
`serve --workers N` uvicorn binds the listening socket itself (`proto` 0) and hands it to the
workers, so their connections keep Nagle on; a response written as headers, then body, then
waits for the client's delayed ACK: about 40 ms per request on a keep-alive connection
(measured by bench/load.py: 48 ms balance reads with 2 workers, 2.3 ms with 1)."""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
