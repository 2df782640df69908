"""Minimal safetensors reader/writer (numpy only; no `safetensors` package needed).

Format: 8-byte little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the data buffer. BF16 is handled as uint16 bit patterns (the top half of
an IEEE float32), rounded to nearest-even on write.
"""

import json
import struct

import numpy as np

_NP = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_,
}
_CODE = {np.dtype(v).str: k for k, v in _NP.items()}


def f32_to_bf16_bits(a):
    """float array -> uint16 bf16 bits, round-to-nearest-even from float32."""
    u = np.ascontiguousarray(np.asarray(a, dtype=np.float32)).view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    return ((u + rounding) >> 16).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def bf16_round(a):
    """Round a float array to the nearest bf16 value (via float32), returned as float64."""
    return bf16_bits_to_f32(f32_to_bf16_bits(a)).astype(np.float64)


def save(path, tensors, dtypes=None, metadata=None):
    """tensors: {name: np.ndarray}. dtypes: optional {name: "BF16"|"F32"|...} override
    (default: the array's own dtype)."""
    dtypes = dtypes or {}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        shape = list(arr.shape)            # (np.ascontiguousarray makes 0-d arrays 1-d)
        code = dtypes.get(name)
        if code == "BF16":
            data = f32_to_bf16_bits(arr).astype("<u2").tobytes()
        else:
            if code is not None:
                arr = arr.astype(_NP[code])
            arr = np.ascontiguousarray(arr)
            code = _CODE[arr.dtype.newbyteorder("<").str]
            data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def load(path):
    """Returns ({name: np.ndarray}, {name: dtype code}). BF16 comes back as float32."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out, codes = {}, {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        buf = raw[base + b: base + end]
        code = e["dtype"]
        if code == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(buf, dtype="<u2"))
        else:
            arr = np.frombuffer(buf, dtype=np.dtype(_NP[code]).newbyteorder("<")).astype(_NP[code])
        out[name] = arr.reshape(tuple(e["shape"]))
        codes[name] = code
    return out, codes
