"""Our tokenizers against independent implementations, on every real tokenizer in
../shared/data/tokenizers and a few hundred strings (tokenizer_strings.py):
  - ids and decoded text identical to Hugging Face's tokenizers.js (tests/node/tokenize.mjs);
    DeepSeek-V3 additionally starts with BOS, as transformers' LlamaTokenizerFast adds it from
    tokenizer_config.json's add_bos_token (tokenizers.js follows the raw tokenizer.json);
  - the legacy Mistral file against SentencePiece (python3-sentencepiece on tokenizer.model) on
    every string without <s>, </s>, <unk> in it (SentencePiece reads those as text);
  - decode(encode(s)) == s (after the tokenizer's own normalizer; SentencePiece-style files drop
    the one leading space their decoder strips).

Usage: /usr/bin/python3 test_tokenizer_oracle.py PATH_TO_moe
"""
import json
import os
import subprocess
import sys
import tempfile
import unicodedata
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "tokenizers")
NODE_DIR = os.path.join(ROOT, "tests", "node")
sys.path.insert(0, HERE)
from tokenizer_strings import strings  # noqa: E402

MOE = None
TOKENIZERS = ["qwen3", "deepseek-v3", "gpt-oss", "olmoe-1b-7b-0924", "mistral-7b-v0.1", "mistral-v1-legacy-json"]
NFC = {"qwen3", "olmoe-1b-7b-0924"}            # their normalizer
SENTENCEPIECE_STYLE = {"mistral-7b-v0.1", "mistral-v1-legacy-json"}  # "▁" in text decodes to a space
STRIPS_FIRST_SPACE = {"mistral-7b-v0.1"}  # Metaspace prepends only to the first piece; the decoder strips it
MISTRAL_ADDED = ("<s>", "</s>", "<unk>")  # the legacy normalizer prepends "▁" after each of them, too
BOS_FROM_CONFIG = {"deepseek-v3": 0}


def run_jsonl(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:3])} failed ({p.returncode}): {p.stderr[-2000:]}")
    return [json.loads(line) for line in p.stdout.split("\n") if line]


class Oracles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@huggingface", "tokenizers")):
            raise AssertionError("tests/node/node_modules is missing: run bash scripts/setup.sh (npm ci in tests/node)")
        cls.tmp = tempfile.mkdtemp(prefix="moe_tok_")
        cls.strings = strings()
        cls.file = os.path.join(cls.tmp, "strings.jsonl")
        with open(cls.file, "w", encoding="utf-8") as f:
            for s in cls.strings:
                f.write(json.dumps(s) + "\n")
        cls.ours, cls.ours_plain, cls.theirs = {}, {}, {}
        for name in TOKENIZERS:
            d = os.path.join(SHARED, name)
            cls.ours[name] = run_jsonl([MOE, "tokenize", "--tokenizer", d, "--jsonl", cls.file])
            cls.ours_plain[name] = run_jsonl([MOE, "tokenize", "--tokenizer", d, "--jsonl", cls.file, "--no_special"])
            cls.theirs[name] = run_jsonl(["node", os.path.join(NODE_DIR, "tokenize.mjs"), d, cls.file])

    def test_enough_strings(self):
        self.assertGreaterEqual(len(self.strings), 300)

    def test_ids_and_decoding_match_tokenizers_js(self):
        for name in TOKENIZERS:
            bad = []
            for s, ours, theirs in zip(self.strings, self.ours[name], self.theirs[name]):
                ids = ours["ids"]
                if name in BOS_FROM_CONFIG:
                    self.assertEqual(ids[:1], [BOS_FROM_CONFIG[name]], f"{name}: {s!r} does not start with BOS")
                    ids = ids[1:]
                if ids != theirs["ids"]:
                    bad.append(f"{s!r}: ours {ids[:12]} theirs {theirs['ids'][:12]}")
            with self.subTest(tokenizer=name):
                self.assertEqual(len(self.ours[name]), len(self.strings))
                self.assertFalse(bad, f"{name}: {len(bad)} strings differ, e.g.\n" + "\n".join(bad[:8]))
                dec = [(s, o["decoded"], t["decoded"]) for s, o, t in zip(self.strings, self.ours[name], self.theirs[name])
                       if name not in BOS_FROM_CONFIG and o["decoded"] != t["decoded"]]
                self.assertFalse(dec, f"{name}: decode differs, e.g. {dec[:4]}")

    def test_round_trip(self):
        for name in TOKENIZERS:
            bad = []
            for s, ours in zip(self.strings, self.ours_plain[name]):
                if name in SENTENCEPIECE_STYLE and ("\u2581" in s or any(t in s for t in MISTRAL_ADDED)):
                    continue
                want = unicodedata.normalize("NFC", s) if name in NFC else s
                if name in STRIPS_FIRST_SPACE and want.startswith(" "):
                    want = want[1:]
                if ours["decoded"] != want:
                    bad.append(f"{s!r} -> {ours['decoded']!r}")
            with self.subTest(tokenizer=name):
                self.assertFalse(bad, f"{name}: {len(bad)} strings do not round-trip, e.g.\n" + "\n".join(bad[:8]))

    def test_legacy_mistral_matches_sentencepiece(self):
        import sentencepiece
        sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(SHARED, "mistral-7b-v0.1", "tokenizer.model"))
        compared, bad = 0, []
        for s, ours in zip(self.strings, self.ours_plain["mistral-v1-legacy-json"]):
            if any(t in s for t in MISTRAL_ADDED):  # SentencePiece reads them as text
                continue
            compared += 1
            if ours["ids"] != sp.encode(s):
                bad.append(f"{s!r}: ours {ours['ids'][:12]} sentencepiece {sp.encode(s)[:12]}")
        self.assertGreater(compared, 250)
        self.assertFalse(bad, f"{len(bad)} strings differ from SentencePiece, e.g.\n" + "\n".join(bad[:8]))


if __name__ == "__main__":
    MOE = sys.argv.pop(1)
    unittest.main()
