"""What an attacker or a clumsy user sends: tiny files that decode to huge images, slivers, forged
canvas data, and floods of requests and WebSocket messages from one client address.

Each file is written directly in its format, a block at a time, so that making a 40-megapixel
file never holds its pixels here either. Used by the tests and by benchmarks/abuse.py.
"""

import base64
import http.client
import os
import socket
import struct
import threading
import time
import zlib

import cv2
import numpy as np

COMPRESS_BLOCK = 4 * 2**20  # bytes of zero pixels compressed at a time: the image is never held whole
# (bits per sample, samples per pixel) of PNG's colour types.
PNG_COLOUR_TYPES = {"grey": (0, 1), "rgb": (2, 3), "palette": (3, 1), "grey_alpha": (4, 2), "rgba": (6, 4)}
# TIFF: the entry types (SHORT, LONG) and tags (numbers from the TIFF 6.0 specification).
TIFF_SHORT, TIFF_LONG = 3, 4
DEFLATE, BLACK_IS_ZERO, IEEE_FLOAT = 8, 1, 3


def _deflated_zeros(size):
    """zlib data that inflates to `size` zero bytes."""
    compressor = zlib.compressobj(9)
    blocks = [compressor.compress(bytes(min(COMPRESS_BLOCK, size - start))) for start in range(0, size, COMPRESS_BLOCK)]
    return b"".join(blocks) + compressor.flush()


def png_bomb(width, height, bit_depth=1, colour="grey"):
    """A complete PNG of width x height black pixels: a few kB that decode to megapixels.

    The default, 1-bit grey, is the smallest file per pixel PNG allows.
    """

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    colour_type, samples = PNG_COLOUR_TYPES[colour]
    row = bytes(1 + (width * samples * bit_depth + 7) // 8)  # filter type 0, then the row's samples
    compressor = zlib.compressobj()
    rows_at_once = max(1, COMPRESS_BLOCK // len(row))
    pixels = (
        b"".join(
            compressor.compress(row * min(rows_at_once, height - start)) for start in range(0, height, rows_at_once)
        )
        + compressor.flush()
    )
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    palette = chunk(b"PLTE", bytes(3 * 2**bit_depth)) if colour == "palette" else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + palette + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def float_tiff(width, height, rows_per_strip=64):
    """A little-endian TIFF of 32-bit float grey pixels, all 0, deflate-compressed in strips."""
    strips = [
        _deflated_zeros(width * 4 * min(rows_per_strip, height - top)) for top in range(0, height, rows_per_strip)
    ]
    count = len(strips)
    tags = [  # (tag, type, count, value), in ascending tag order as TIFF requires
        (256, TIFF_LONG, 1, width),
        (257, TIFF_LONG, 1, height),
        (258, TIFF_SHORT, 1, 32),
        (259, TIFF_SHORT, 1, DEFLATE),
        (262, TIFF_SHORT, 1, BLACK_IS_ZERO),
        (273, TIFF_LONG, count, "offsets"),
        (277, TIFF_SHORT, 1, 1),
        (278, TIFF_LONG, 1, rows_per_strip),
        (279, TIFF_LONG, count, "sizes"),
        (339, TIFF_SHORT, 1, IEEE_FLOAT),
    ]
    directory_at = 8
    arrays_at = directory_at + 2 + 12 * len(tags) + 4
    data_at = arrays_at + 8 * count
    offsets = list(np.cumsum([data_at] + [len(strip) for strip in strips[:-1]]))
    arrays = {"offsets": (offsets, arrays_at), "sizes": ([len(strip) for strip in strips], arrays_at + 4 * count)}
    out = bytearray(b"II*\x00" + struct.pack("<I", directory_at) + struct.pack("<H", len(tags)))
    for tag, kind, number, value in tags:
        if value in arrays:  # one strip: the value itself; several: where the array of them is
            values, at = arrays[value]
            value = int(values[0]) if count == 1 else at
        if kind == TIFF_SHORT:
            out += struct.pack("<HHIHH", tag, kind, number, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, number, value)
    out += struct.pack("<I", 0)  # no further directory
    out += struct.pack(f"<{count}I", *map(int, offsets)) + struct.pack(f"<{count}I", *map(len, strips))
    return bytes(out + b"".join(strips))


def sliver_png(width, height):
    """A PNG one pixel high (or wide): a black line on white. Shrinking it must keep a pixel."""
    picture = np.full((height, width), 255, np.uint8)
    picture[height // 2, :] = 0
    picture[:, width // 2] = 0
    ok, encoded = cv2.imencode(".png", picture)
    if not ok:
        raise ValueError("OpenCV could not encode the sliver")
    return encoded.tobytes()


def data_url(data, mime="image/png"):
    """What the drawing canvas sends: the PNG as a base64 data URL."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------
# Floods from one client address. On Linux every 127.x.y.z address is the loopback
# interface, so binding to 127.0.0.2 makes a second client that nginx tells apart.

WEBSOCKET_KEY = base64.b64encode(b"sixteen byte key").decode()  # any 16 bytes: the server only echoes a hash
SOCKET_TIMEOUT = 10  # seconds


def rerun_message():
    """A Streamlit BackMsg asking for a rerun: what each click sends, with no widget changed (2 bytes)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    message = BackMsg()
    message.rerun_script.query_string = ""
    return message.SerializeToString()


def websocket_frame(payload):
    """A masked binary WebSocket frame, as clients must send (RFC 6455, section 5.2)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack(">BB", 0x82, 0x80 | length)
    elif length < 2**16:
        header = struct.pack(">BBH", 0x82, 0x80 | 126, length)
    else:
        header = struct.pack(">BBQ", 0x82, 0x80 | 127, length)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + masked


def open_app_websocket(host, port, source_address):
    """A Streamlit session's WebSocket opened from source_address; the socket after the 101 answer."""
    connection = socket.create_connection((host, port), timeout=SOCKET_TIMEOUT, source_address=(source_address, 0))
    connection.sendall(
        f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: http://{host}:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {WEBSOCKET_KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(4096)
        if not chunk:
            raise ConnectionError(f"the server closed the WebSocket handshake: {answer[:200]!r}")
        answer += chunk
    if not answer.startswith(b"HTTP/1.1 101"):
        connection.close()
        raise ConnectionError(f"the WebSocket was refused: {answer.splitlines()[0].decode(errors='replace')}")
    return connection


class Flood:
    """One client (source_address) sending as fast as it can until stopped: HTTP requests, WebSocket reruns.

    Counts what it sent and how the server answered; refused connections and 429s count too.
    Its threads run at the lowest CPU priority: on one machine the flood would otherwise take
    the cores of the server it attacks, which a client elsewhere cannot.
    """

    def __init__(self, host, port, source_address, http_threads=8, websockets=4, path="/_stcore/health"):
        self.host, self.port, self.source_address, self.path = host, port, source_address, path
        self.statuses = {}  # HTTP status -> count
        self.messages_sent = 0  # WebSocket messages written
        self.websocket_refusals = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._requests, daemon=True) for _ in range(http_threads)]
        self._threads += [threading.Thread(target=self._reruns, daemon=True) for _ in range(websockets)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exception):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=SOCKET_TIMEOUT + 5)

    def _count(self, key):
        with self._lock:
            self.statuses[key] = self.statuses.get(key, 0) + 1

    def _requests(self):
        os.nice(19)  # this thread only: Linux gives each thread its own priority
        connection = None
        while not self._stop.is_set():
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        self.host, self.port, timeout=SOCKET_TIMEOUT, source_address=(self.source_address, 0)
                    )
                connection.request("GET", self.path)
                response = connection.getresponse()
                response.read()
                self._count(response.status)
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                self._count("refused")
                connection = None
                time.sleep(0.01)

    def _reruns(self):
        os.nice(19)
        frame = websocket_frame(rerun_message())
        burst = frame * 100  # one write of 100 messages: as fast as the connection takes them
        while not self._stop.is_set():
            try:
                connection = open_app_websocket(self.host, self.port, self.source_address)
            except (OSError, ConnectionError):
                with self._lock:
                    self.websocket_refusals += 1
                time.sleep(0.05)
                continue
            # Read everything the server sends back: a client that stops reading is dropped by Streamlit.
            drain = threading.Thread(target=self._drain, args=(connection,), daemon=True)
            drain.start()
            try:
                while not self._stop.is_set():
                    connection.sendall(burst)
                    with self._lock:
                        self.messages_sent += 100
            except OSError:
                pass
            finally:
                connection.close()
                drain.join(timeout=1)

    def _drain(self, connection):
        os.nice(19)
        try:
            while not self._stop.is_set() and connection.recv(65536):
                pass
        except OSError:
            pass
