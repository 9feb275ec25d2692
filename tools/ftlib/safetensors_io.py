"""Minimal safetensors reader/writer.

Debian ships no python3-safetensors, and the format is a JSON header plus raw
little-endian buffers, so a few lines of numpy do it exactly
(https://github.com/huggingface/safetensors#format).

numpy has no bfloat16, so BF16 tensors are read as float32 (exact: a bfloat16 is the upper 16 bits of
the float32 with the same value) and written from their raw 16-bit patterns (`BF16(bits)`, or
`bf16_bits(float32 array)` to round a float32 array to the nearest bfloat16, ties to even).
"""
from __future__ import annotations

import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


class BF16:
    """A bfloat16 tensor to write: its raw 16-bit patterns (uint16, any shape)."""

    def __init__(self, bits: np.ndarray):
        bits = np.asarray(bits)
        if bits.dtype != np.uint16:
            raise ValueError(f"BF16 takes the raw uint16 bit patterns, got {bits.dtype}")
        self.bits = bits


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """The bfloat16 bit patterns nearest to float32 values (round to nearest, ties to even; NaN kept NaN)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, np.uint16(0x7FC0), rounded).astype(np.uint16)


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def save(path: str, tensors: dict[str, np.ndarray | BF16], metadata: dict[str, str] | None = None) -> None:
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    offset = 0
    arrays = []
    for name in sorted(tensors):
        value = tensors[name]
        if isinstance(value, BF16):
            arr, dtype = np.ascontiguousarray(value.bits).astype("<u2"), "BF16"
        else:
            arr = np.ascontiguousarray(value)
            if arr.dtype.byteorder == ">":
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            dtype = _NAMES.get(arr.dtype)
            if dtype is None:
                raise ValueError(f"{name}: unsupported dtype {arr.dtype}")
        nbytes = arr.nbytes
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
        arrays.append(arr)
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * ((8 - len(blob) % 8) % 8)  # align the data section to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for arr in arrays:
            f.write(arr.tobytes())


def _read(path: str) -> tuple[dict, bytes, int]:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path} is not a safetensors file (header length {n} exceeds the file)")
    header = json.loads(data[8 : 8 + n])
    return header, data, 8 + n


def read_header(path: str) -> dict[str, dict]:
    """Each tensor's {dtype, shape, data_offsets} as the file declares it (no data converted)."""
    header, _, _ = _read(path)
    return {k: v for k, v in header.items() if k != "__metadata__"}


def load(path: str) -> dict[str, np.ndarray]:
    """Every tensor as a numpy array; BF16 ones as float32 (exactly their values)."""
    header, data, base = _read(path)
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[base + start : base + end]
        if info["dtype"] == "BF16":
            out[name] = bf16_to_float32(np.frombuffer(raw, dtype="<u2")).reshape(info["shape"]).copy()
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, which this reader does not know")
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(raw, dtype=dtype).reshape(info["shape"])
        out[name] = arr.copy()
    return out
