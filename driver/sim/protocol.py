"""The sim backend's request/reply protocol between the driver (``backends/sim.py``) and
the cocotb test inside the simulator (``sim/server.py``), over a localhost socket.

One request, one reply, in order. Each message is a header ``<II`` (JSON length, blob
length), a UTF-8 JSON object, then the blob::

    <- {"token": t}                              first, when the simulator connects: the
                                                    token the driver put in its environment
    {"op": "hello"}                              -> {mem_beats, clock_ns, cycle, simulator}
    {"op": "read", "addr": a}                    -> {value}
    {"op": "write", "addr": a, "value": v}       -> {}
    {"op": "mm2s"} + blob (the bytes to send)    -> {cycle}    start memory-to-stream
    {"op": "s2mm", "beats": n}                   -> {cycle}    arm stream-to-memory
    {"op": "wait", "chan": c, "cycles": n}       -> {done, cycle} (+ received bytes when an
                                                    S2MM transfer is done)
    {"op": "dma_reset"}                          -> {}         DMA soft reset
    {"op": "step", "cycles": n}                  -> {cycle}
    {"op": "shutdown"}                           -> {}         the simulation ends

Every reply carries ``"ok": true``, or ``"ok": false`` and ``"error"``.
"""

from __future__ import annotations

import json
import socket
import struct

_HEADER = struct.Struct("<II")


def send_msg(sock: socket.socket, obj: dict, blob: bytes = b"") -> None:
    js = json.dumps(obj).encode()
    sock.sendall(_HEADER.pack(len(js), len(blob)) + js + blob)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return bytes(buf)


def recv_msg(sock: socket.socket) -> tuple[dict, bytes]:
    nj, nb = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    obj = json.loads(_recv_exact(sock, nj))
    return obj, _recv_exact(sock, nb) if nb else b""
