#!/usr/bin/python3
"""Safetensors interop oracle: files written by hand here (struct + json + numpy, no safetensors
package) are read by our C++ reader, and files written by our C++ writer are read back here.

  safetensors_interop.py --tool build/tests/safetensors_tool   run the oracle
  safetensors_interop.py --fixture OUT                         write tests/fuzz/corpus/safetensors/python_mixed.safetensors
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

NP_DTYPE = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "BF16": np.uint16, "I8": np.int8,
            "I16": np.int16, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "U16": np.uint16,
            "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}


def write_file(path, tensors, metadata=None, pad=False):
    """tensors: list of (name, dtype, array), laid out in this order; header as json.dumps writes it."""
    header, chunks, offset = {}, [], 0
    for name, dtype, arr in tensors:
        raw = np.ascontiguousarray(arr).astype(NP_DTYPE[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def read_file(path):
    """-> (header dict, names in file order, {name: raw bytes}, header length)."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    buf = data[8 + n:]
    entries = sorted(((v["data_offsets"], k) for k, v in header.items() if k != "__metadata__"))
    return header, [k for _, k in entries], {k: buf[b:e] for (b, e), k in entries}, n


def as_float64(dtype, arr):
    if dtype == "BF16":  # bits -> float32 -> float64
        return (arr.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return arr.astype(np.float64)


def oracle_tensors(rng):
    ints = lambda lo, hi, shape, dt: rng.integers(lo, hi, size=shape).astype(dt)
    f32 = rng.standard_normal((5, 7)).astype(np.float32)
    return [
        ("mask", "U8", ints(0, 255, (3,), np.uint8)),  # 3 bytes first: everything after is misaligned
        ("w_f32", "F32", f32),
        ("w_f64", "F64", rng.standard_normal((4, 3))),
        ("w_bf16", "BF16", (f32.view(np.uint32) >> 16).astype(np.uint16).reshape(5, 7)),
        ("w_f16", "F16", rng.standard_normal((6,)).astype(np.float16)),
        ("ids_i32", "I32", ints(-1000, 1000, (2, 3, 4), np.int32)),
        ("ids_i64", "I64", ints(-10**6, 10**6, (9,), np.int64)),
        ("i8", "I8", ints(-128, 127, (5,), np.int8)),
        ("u16", "U16", ints(0, 65535, (4,), np.uint16)),
        ("flags", "BOOL", rng.integers(0, 2, size=(2, 5)).astype(np.bool_)),
        ("scalar", "F32", np.array(3.25, dtype=np.float32)),
        ("empty", "F64", np.zeros((0, 4))),
        ("u64", "U64", ints(0, 10**9, (3,), np.uint64)),
    ]


def run_oracle(tool):
    failures = []
    check = lambda ok, what: ok or failures.append(what)
    tensors = oracle_tensors(np.random.default_rng(1234))
    metadata = {"format": "pt", "note": "written by hand ✓"}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "py.safetensors"), os.path.join(tmp, "cpp.safetensors")
        write_file(src, tensors, metadata)
        out = subprocess.run([tool, "dump", src], capture_output=True, text=True, check=True).stdout
        lines = [l.split("\t") for l in out.splitlines()]
        meta = {l[1]: l[2] for l in lines if l[0] == "__metadata__"}
        check(meta == metadata, f"metadata: {meta} != {metadata}")
        dumped = {l[0]: l[1:] for l in lines if l[0] != "__metadata__"}
        check(sorted(dumped) == sorted(t[0] for t in tensors), f"names: {sorted(dumped)}")
        for name, dtype, arr in tensors:
            if name not in dumped:
                continue
            got_dtype, got_shape, got_sum = dumped[name]
            want_sum = float(np.sum(as_float64(dtype, arr)))
            check(got_dtype == dtype, f"{name}: dtype {got_dtype} != {dtype}")
            check(json.loads(got_shape) == list(arr.shape), f"{name}: shape {got_shape} != {list(arr.shape)}")
            check(math.isclose(float(got_sum), want_sum, rel_tol=1e-12, abs_tol=1e-12),
                  f"{name}: sum {got_sum} != {want_sum!r}")

        # Our writer's file, read back by hand: same tensors, same order, reference layout.
        subprocess.run([tool, "copy", src, dst], check=True)
        header, order, raw, n = read_file(dst)
        check(n % 8 == 0, f"header length {n} is not a multiple of 8")
        check(open(dst, "rb").read()[8:9] == b"{", "header does not start with '{'")
        check(header.get("__metadata__") == metadata, f"copied metadata {header.get('__metadata__')}")
        check(order == [t[0] for t in tensors], f"copied order {order}")
        for name, dtype, arr in tensors:
            want = np.ascontiguousarray(arr).astype(NP_DTYPE[dtype]).tobytes()
            check(raw.get(name) == want, f"{name}: copied bytes differ")
            check(header[name]["dtype"] == dtype and header[name]["shape"] == list(arr.shape), f"{name}: copied entry")

        # A truncated file is refused with a clear message, not a crash.
        with open(src, "rb") as f:
            data = f.read()
        with open(src, "wb") as f:
            f.write(data[:-1])
        bad = subprocess.run([tool, "dump", src], capture_output=True, text=True)
        check(bad.returncode == 2 and bad.stderr.startswith(f"[safetensors] {src}: "),
              f"truncated file: status {bad.returncode}, stderr {bad.stderr!r}")
    for f in failures:
        print("FAIL:", f)
    print(f"safetensors interop: {len(tensors)} tensors, {len(failures)} failures")
    return 1 if failures else 0


def write_fixture(path):
    """The small file tests/test_safetensors.cpp reads (values checked there one by one)."""
    write_file(path, [
        ("u8", "U8", np.array([1, 2, 250])),
        ("f32", "F32", np.array([[1.5, 2.0], [3.0, -0.25]])),
        ("bf16", "BF16", np.array([0x3F80, 0xC060])),  # 1.0, -3.5
        ("scalar", "I64", np.array(-7)),
        ("flag", "BOOL", np.array([True, False])),
        ("empty", "F64", np.zeros((0, 3))),
    ], {"format": "pt", "writer": "python"})
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", help="path to the safetensors_tool executable")
    ap.add_argument("--fixture", help="write the small Python-made fixture file here and exit")
    args = ap.parse_args()
    if args.fixture:
        sys.exit(write_fixture(args.fixture))
    if not args.tool:
        ap.error("--tool or --fixture is required")
    sys.exit(run_oracle(args.tool))
