"""When a node's answer really arrived, whatever the checker's event loop
was doing meanwhile.

A checker times an answer from the moment its request went out to the
moment it reads the answer's last byte. On a busy host the event loop may
get to that read long after the bytes arrived: it was running other
probes, or the process was waiting for a core. That delay is the
checker's, not the node's, yet it went into the report's latency (and a
challenge's elapsed time), and an honest checker on a loaded machine was
judged incorrect for it.

Linux keeps, for every TCP socket, how long ago data last arrived on it
(``tcpi_last_data_recv`` in ``struct tcp_info``, in milliseconds, counted
by the kernel when the segment came in). Read right after the answer,
``now - last_data_recv`` is when its last byte arrived. The figure can
only be later than the true arrival, never earlier (a later segment on the
same connection only moves it towards ``now``), apart from the kernel's
clock tick (a few ms, within the judging's noise floor): a checker using
it never reports a node faster than it answered. Where the platform does
not say (another OS, a socket already closed), the read time stands.
"""

import socket
import struct
import time

# struct tcp_info (include/uapi/linux/tcp.h): eight one-byte fields, then
# u32 rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets,
# last_data_sent, last_ack_sent, last_data_recv: the last at byte 52. The
# layout only ever grows at its end, so the offset is stable.
LAST_DATA_RECV_OFFSET = 52
TCP_INFO_BYTES = 104
TCP_INFO = getattr(socket, "TCP_INFO", None)  # Linux only


def response_socket(response):
    """The socket an aiohttp response came over, or ``None``. Taken from
    the response's protocol, since aiohttp releases a small answer's
    connection back to its pool before the caller sees the response."""
    transport = getattr(getattr(response, "_protocol", None), "transport", None)
    return None if transport is None else transport.get_extra_info("socket")


def last_data_age(sock) -> float | None:
    """Seconds since data last arrived on ``sock``, per the kernel; ``None``
    where it cannot say."""
    if sock is None or TCP_INFO is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, TCP_INFO_BYTES)
    except (OSError, ValueError, TypeError):
        return None
    if len(raw) < LAST_DATA_RECV_OFFSET + 4:
        return None
    return struct.unpack_from("=I", raw, LAST_DATA_RECV_OFFSET)[0] / 1000


def answered_at(sock, sent: float) -> float:
    """When the answer on ``sock`` finished arriving (``time.monotonic``
    seconds): now, less how long ago the kernel says its last byte came in,
    but never before ``sent``. Call it right after reading the answer."""
    now = time.monotonic()
    age = last_data_age(sock)
    if age is None:
        return now
    return max(sent, min(now, now - age))
