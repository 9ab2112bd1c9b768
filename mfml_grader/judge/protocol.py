"""The wire format between the trusted grader and the sandboxed worker: JSON plus raw tensor bytes.

Nothing is ever unpickled. A message is one frame:

    8-byte big-endian header length | 8-byte payload length | JSON header | payload bytes

Values are plain data: None, bool, int, float, str, lists, tuples, dicts with string keys, and
tensors (dtype, shape, raw bytes of a contiguous copy). Two course-made objects also cross, from the
trusted side only: a `SourceFunction` (as its source) and a `torch.Generator` (as its state).
"""

import json
import math
import socket
import struct
import time

import torch

MAX_FRAME_BYTES = 512 * 2**20   # payload (raw tensor bytes) of one message
MAX_HEADER_BYTES = 16 * 2**20   # its JSON part: text, numbers and structure (Python objects cost ~10x the JSON)
MAX_DECODED_BYTES = 512 * 2**20  # what decoding may build: a payload shared by many tensors counts each time
HEADER = struct.Struct(">QQ")
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16,
    torch.int32, torch.int64, torch.bool, torch.complex64, torch.complex128)}


class ProtocolError(Exception):
    """A frame that is too large, malformed, or holds something that is not plain data."""


def _as_float(n):
    """A huge int as the nearest float (infinite past float's range): ints cross as int64."""
    try:
        return float(n)
    except OverflowError:
        return math.inf if n > 0 else -math.inf


def encode(value):
    """(JSON-able header, payload bytes) for a plain value."""
    blobs = []

    def walk(v):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return v if abs(v) < 2**63 else {"__float__": repr(_as_float(v))}
        if isinstance(v, float):
            return {"__float__": repr(v)}
        if isinstance(v, torch.Tensor):
            t = v.detach().contiguous().cpu()
            dtype = str(t.dtype).removeprefix("torch.")
            if dtype not in DTYPES:
                raise ProtocolError(f"tensors of dtype {t.dtype} are not supported")
            blobs.append(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            return {"__tensor__": len(blobs) - 1, "dtype": dtype, "shape": list(t.shape)}
        if isinstance(v, tuple):
            return {"__tuple__": [walk(x) for x in v]}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise ProtocolError("only dicts with string keys can cross")
            return {"__dict__": {k: walk(x) for k, x in v.items()}}
        if isinstance(v, torch.Generator):
            return {"__generator__": walk(v.get_state())}
        if hasattr(v, "source") and type(v).__name__ == "SourceFunction":
            return {"__function__": v.source}
        raise ProtocolError(f"a {type(v).__name__} cannot cross the grader boundary")

    header = walk(value)
    offsets, payload = [], bytearray()
    for blob in blobs:
        offsets.append((len(payload), len(blob)))
        payload += blob
    return {"value": header, "blobs": offsets}, bytes(payload)


def decode(header, payload, allow_code=False):
    """The plain value of a frame. `allow_code` (worker side only) rebuilds course functions.

    Whatever the header says, decoding builds at most MAX_DECODED_BYTES of tensors.
    """
    blobs = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(blobs, list):
        raise ProtocolError("malformed message")
    payload = payload if isinstance(payload, bytearray) else bytearray(payload)   # tensors are read from it in place, then copied
    budget = [MAX_DECODED_BYTES]

    def blob(index, length):
        if not isinstance(index, int) or not 0 <= index < len(blobs):
            raise ProtocolError("malformed tensor")
        start, size = (int(n) for n in blobs[index])
        if size != length or start < 0 or start + size > len(payload):
            raise ProtocolError("tensor bytes do not match its shape")
        budget[0] -= size
        if budget[0] < 0:
            raise ProtocolError(f"a message that decodes to more than {MAX_DECODED_BYTES // 2**20} MiB")
        return start

    def walk(v):
        if v is None or isinstance(v, (bool, str, int)):
            return v
        if isinstance(v, list):
            return [walk(x) for x in v]
        if not isinstance(v, dict) or len(v) not in (1, 3):
            raise ProtocolError("malformed value")
        if "__float__" in v:
            return float(v["__float__"])
        if "__tensor__" in v:
            dtype = DTYPES.get(v["dtype"])
            shape = [int(n) for n in v["shape"]]
            if dtype is None or any(n < 0 for n in shape) or len(shape) > 16:
                raise ProtocolError("malformed tensor")
            numel = math.prod(shape)
            start = blob(v["__tensor__"], numel * dtype.itemsize)
            if not numel:
                return torch.empty(shape, dtype=dtype)
            return torch.frombuffer(payload, dtype=torch.uint8, count=numel * dtype.itemsize, offset=start).view(dtype).reshape(shape).clone()
        if "__tuple__" in v:
            return tuple(walk(x) for x in v["__tuple__"])
        if "__dict__" in v:
            return {str(k): walk(x) for k, x in v["__dict__"].items()}
        if allow_code and "__generator__" in v:
            generator = torch.Generator()
            generator.set_state(walk(v["__generator__"]))
            return generator
        if allow_code and "__function__" in v:
            from ..exercise import SourceFunction
            return SourceFunction(v["__function__"])
        raise ProtocolError("malformed value")

    try:
        return walk(header.get("value"))
    except ProtocolError:
        raise
    except (RecursionError, MemoryError):
        raise ProtocolError("a value nested too deeply or too large") from None
    except Exception as error:  # noqa: BLE001 - a forged value of the wrong types: refused, never a crash
        raise ProtocolError(f"malformed value ({type(error).__name__})") from None


def pack(message, value=None):
    """One frame: a message (a dict of JSON fields) with an optional plain `value`.

    Raises ProtocolError, before anything is sent, when `value` is not plain data.
    """
    body, payload = encode(value)
    body.update(message)
    data = json.dumps(body, allow_nan=False).encode()
    return HEADER.pack(len(data), len(payload)) + data + payload


def send(sock, message, value=None, fds=()):
    """Send one frame; `fds` travel with its first bytes (SCM_RIGHTS)."""
    send_frame(sock, pack(message, value), fds)


def send_frame(sock, frame, fds=()):
    """Send a packed frame; `fds` travel with its first bytes (SCM_RIGHTS)."""
    if fds:
        sent = socket.send_fds(sock, [frame], list(fds))
        frame = frame[sent:]
    sock.sendall(frame)


def _recv_exactly(sock, n, deadline, fds=None):
    """n bytes, read before `deadline` (time.monotonic()): a reply trickling in still times out.

    File descriptors passed along (SCM_RIGHTS) are appended to `fds` when given, else closed.
    """
    data = bytearray()
    while len(data) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete answer in time")
            sock.settimeout(left)
        if fds is None:
            chunk = sock.recv(min(n - len(data), 4 * 2**20))
        else:
            chunk, received, _, _ = socket.recv_fds(sock, min(n - len(data), 4 * 2**20), 4)
            fds += received
        if not chunk:
            raise EOFError("the other side closed the connection")
        data += chunk
    return data


def receive(sock, allow_code=False, deadline=None, fds=None):
    """(message dict, decoded value), read completely before `deadline`. Refuses oversized frames.

    TimeoutError when no frame has begun by the deadline; a frame begun but not finished by then
    is refused (ProtocolError): the stream cannot be trusted to line up again.
    """
    first = _recv_exactly(sock, 1, deadline, fds)
    try:
        header_length, payload_length = HEADER.unpack(first + _recv_exactly(sock, HEADER.size - 1, deadline))
        if header_length > MAX_HEADER_BYTES or payload_length > MAX_FRAME_BYTES:
            raise ProtocolError(f"a message of {(header_length + payload_length) / 2**20:.0f} MiB is over the limit "
                                f"({MAX_HEADER_BYTES // 2**20} MiB of text and structure, {MAX_FRAME_BYTES // 2**20} MiB of tensor data)")
        text = _recv_exactly(sock, header_length, deadline)
        payload = _recv_exactly(sock, payload_length, deadline)
    except TimeoutError:
        raise ProtocolError("an answer began but did not finish in time (it trickled in)") from None
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"malformed message: {type(error).__name__}") from None
    if not isinstance(body, dict):
        raise ProtocolError("malformed message")
    return body, decode(body, payload, allow_code)
