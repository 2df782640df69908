"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/; safetensors' seeds are
hand-made and kept as they are) from the project's
own valid inputs: the layer oracle's configs, the example and shared Hugging Face configs, real
checkpoints trained by `moe train`, and recorded routings; plus a few near misses of each.

Usage: /usr/bin/python3 tests/fuzz/make_seeds.py build/release/moe
"""
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))
import safetensors_io as st  # noqa: E402
from moe_cases import CASES  # noqa: E402


def fresh(target):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def metadata(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    return raw, json.loads(raw[8:8 + n])["__metadata__"]


def main(moe):
    hf = sorted(glob.glob(os.path.join(ROOT, "examples", "configs", "*.json")) +
                glob.glob(os.path.join(ROOT, "..", "shared", "data", "hf-configs", "*.json")))

    d = fresh("layer_config")
    for i, case in enumerate(CASES):
        write(d, f"case_{i:02d}_{case['name']}.json", json.dumps(case["cfg"], indent=1))
    write(d, "not_an_object.json", "[1, 2]")
    write(d, "duplicate_key.json", '{"hidden_size": 8, "hidden_size": 9}')

    d = fresh("hf_config")
    for p in hf:
        write(d, os.path.basename(p), open(p).read())
    write(d, "truncated.json", open(hf[0]).read()[:100])

    d = fresh("checkpoint")
    tmp = tempfile.mkdtemp(prefix="moe_seeds_")
    try:
        text = os.path.join(tmp, "c.txt")
        with open(text, "w") as f:
            f.write("".join(f"line {i}: a quick brown fox.\n" for i in range(200)))
        model = ["--emb_dim", "8", "--n_layers", "2", "--n_heads", "2", "--hidden_dim", "8", "--context", "16"]
        run = ["--batch", "2", "--seq", "8", "--steps", "2", "--eval_every", "0", "--eval_windows", "1", "--threads", "1",
               "--no_progress"]
        for name, extra in (("dense", []), ("moe", ["--num_experts", "2", "--top_k", "1"]),
                            ("sigmoid", ["--num_experts", "2", "--top_k", "1", "--router", "sigmoid"])):
            out = os.path.join(tmp, name)
            subprocess.run([moe, "train", "--data", text, "--out", out, *model, *run, *extra], check=True,
                           capture_output=True)
            raw, meta = metadata(os.path.join(out, "checkpoint.safetensors"))
            write(d, f"{name}.safetensors", raw)
            write(d, f"{name}.meta", b"M" + meta["moe.config"].encode() + b"\0" + meta["moe.train_state"].encode())
        write(d, "v1.safetensors", open(os.path.join(ROOT, "tests", "data", "checkpoint_v1.safetensors"), "rb").read())
        write(d, "bad_state.meta", b'M{"model": null}\0{"step": "5", "noise_rng": 1, "batcher": []}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    d = fresh("routing")
    rng = np.random.default_rng(0)
    ids = np.stack([rng.permutation(6)[:2] for _ in range(5)]).astype(np.int32)
    for name, tensors in (("i32", {"expert_ids": ids}), ("i64", {"expert_ids": ids.astype(np.int64)}),
                          ("one_row", {"expert_ids": ids[:1]}),
                          ("repeated", {"expert_ids": np.array([[1, 1]], np.int32)}),
                          ("out_of_range", {"expert_ids": np.array([[0, 6]], np.int32)}),
                          ("float", {"expert_ids": ids.astype(np.float32)}),
                          ("empty", {"expert_ids": np.zeros((0, 2), np.int32)})):
        path = os.path.join(d, name + ".safetensors")
        st.save(path, tensors)


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]))
