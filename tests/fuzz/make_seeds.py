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
    """The target's seed folder, emptied of generated seeds; inputs that found a bug (found_*) stay."""
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if not name.startswith("found_"):
            os.remove(os.path.join(d, name))
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

    tokenizer_seeds(fresh("tokenizer"))
    template_seeds(fresh("chat_template"))


def template_seeds(d):
    """The real chat templates and the oracle test's construct templates."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "text"))
    from test_chat_template_oracle import CONSTRUCTS, config_template, file_template
    write(d, "qwen3.jinja", config_template("qwen3"))
    write(d, "deepseek-v3.jinja", config_template("deepseek-v3"))
    for name in ("openai-gpt-oss-120b.jinja", "deepseek-ai-DeepSeek-V3.1.jinja"):
        write(d, name, file_template(name))
    for name, source in CONSTRUCTS.items():
        write(d, f"construct_{name}.jinja", source)


def byte_map():
    chars = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    m, extra = {}, 256
    for b in range(256):
        if b in chars:
            m[b] = chr(b)
        else:
            m[b] = chr(extra)
            extra += 1
    return m


def tokenizer_seeds(d):
    """Small tokenizer.json files with every stage kind the real ones use, and texts ('T' + UTF-8)
    for the two real tokenizers the target loads."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "text"))
    from tokenizer_strings import strings
    bm = byte_map()
    vocab = {bm[b]: b for b in range(256)}
    vocab.update({"ab": 256, "abc": 257, "Ġt": 258, "he": 259})
    merges = [["a", "b"], ["ab", "c"], ["Ġ", "t"], ["h", "e"]]
    added = [{"id": 300, "content": "<|end|>", "special": True, "normalized": False, "lstrip": False, "rstrip": False,
              "single_word": False},
             {"id": 301, "content": "  ", "special": False, "normalized": True, "lstrip": True, "rstrip": True,
              "single_word": True}]
    byte_level = {"model": {"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": True},
                  "normalizer": {"type": "NFC"},
                  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                      {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": False},
                      {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}]},
                  "post_processor": {"type": "TemplateProcessing",
                                     "single": [{"SpecialToken": {"id": "<|end|>", "type_id": 0}}, {"Sequence": {"id": "A"}}],
                                     "special_tokens": {"<|end|>": {"id": "<|end|>", "ids": [300], "tokens": ["<|end|>"]}}},
                  "decoder": {"type": "ByteLevel"}, "added_tokens": added}
    write(d, "byte_level.json", json.dumps(byte_level))
    sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6}
    sp_vocab.update({f"<0x{b:02X}>": 7 + b for b in range(256)})
    sentencepiece = {"model": {"type": "BPE", "vocab": sp_vocab, "merges": ["\u2581 a"], "unk_token": "<unk>",
                               "fuse_unk": True, "byte_fallback": True},
                     "normalizer": {"type": "Sequence", "normalizers": [
                         {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
                     "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
                     "decoder": {"type": "Sequence", "decoders": [
                         {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
                         {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
                     "added_tokens": [{"id": 1, "content": "<s>", "special": True, "normalized": False}]}
    write(d, "sentencepiece.json", json.dumps(sentencepiece))
    for i, text in enumerate(strings()[::8]):
        write(d, f"text_{i:02d}.txt", b"T" + text.encode("utf-8"))


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]))
