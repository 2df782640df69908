"""The strings the tokenizer tests run through every real tokenizer: hand-picked hard cases
(Unicode forms, CJK, emoji, whitespace runs, digits, code, contractions, special tokens inside
text) and seeded random mixtures of them. `strings()` is deterministic."""
import random
import unicodedata

HAND = [
    "", " ", "  ", "\n", "\t", "Hello world", " Hello world", "  Hello  world  ", "Hello\nworld\n",
    "hello\r\nworld\r\n", "a\n\n\nb", "trailing spaces   ", "   leading", "\t\ttabs\tand spaces ",
    "I'm here, you're there, he's gone, they've left, we'll see, I'd say, don't.",
    "DON'T SHOUT, I'M HERE, IT'S FINE", "O'Neil's 'quoted' words'", "rock 'n' roll",
    "12345", "3.14159", "1,000,000 and 2,500.75", "0x1F 0b1010 007", "2026-12-01T23:59:59Z", "v1.2.3-rc4",
    "١٢٣ arabic-indic digits ٤٥٦", "½ ⅓ ¼ Ⅻ ⁴²", "١٢٣٤٥٦٧٨٩",
    "café naïve résumé façade", unicodedata.normalize("NFD", "café naïve résumé"), "Ǆemal ǅemal ǆemal",
    "straße STRASSE ß ẞ", "İstanbul ıi", "Ελληνικά γράμματα ΣΊΣΥΦΟΣ", "Кириллица и русский текст",
    "עברית וערבית العربية", "हिन्दी देवनागरी", "ภาษาไทย", "한국어 텍스트", "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ",
    "你好，世界！", "我爱自然语言处理。", "日本語のテキスト、カタカナとひらがな。", "中文English混合mixed文本",
    "emoji 😀😃😄 and 👍🏽", "family 👨‍👩‍👧‍👦 flags 🇩🇪🇯🇵", "❤️ ✨ 🎉🎉🎉", "🤖🧠💻",
    "non\u00a0breaking\u00a0space", "ideographic\u3000space", "zero\u200bwidth\u200djoiner", "line\u2028separator",
    "nel\u0085here", "form\u000cfeed\u000bvtab", "soft\u00adhyphen", "combining a\u0301 e\u0308 o\u0302",
    "def f(x):\n    return x ** 2  # square\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "#include <vector>\nint main() { return 0; }", "SELECT * FROM t WHERE id = 42;", "<div class=\"x\">hi</div>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}", "path/to/file.txt C:\\Windows\\System32", "https://example.com/a?b=c&d=e#f",
    "user@example.com", "$100 €50 £20 ¥1000", "a+b=c; x*y/z; p%q", "!!!???...", "----====____", "~`@#$%^&*()[]{}|\\",
    "mixed\ttabs\nand\r\nnewlines  end", "word" * 30, "abc " * 50, "x" * 300, "ab" * 100, " " * 40, "\n" * 10,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "Supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
]

# Written into text, so each tokenizer's added tokens are met in the middle of words and lines.
SPECIAL = [
    "<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>",
    "<|startoftext|>", "<|return|>", "<|channel|>", "<|message|>", "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<|EOT|>", "<|padding|>", "|||IP_ADDRESS|||",
    "<|reserved_special_token_0|>", "<", "<|", "|>",
]

WORDS = ["the", "The", " quick", "brown", "fox", "jumps", "über", "naïve", "你好", "世界", "😀", "123", "4567",
         "  ", "\n", "\t", "'s", "'LL", "x", "__init__", "->", "::", "  \n", "\r\n", "..."]


def strings():
    rng = random.Random(20261201)
    out = list(HAND)
    for s in SPECIAL:
        out += [s, f"{s}Hello", f"Hello{s}", f"Hello {s} world", f"{s}\n", f" {s} ", f"{s}{s}", f"a{s}b{s}c"]
    out += ["<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
            "<s>[INST] What is 2 + 2? [/INST]", "<｜User｜>Hello<｜Assistant｜>Hi!<｜end▁of▁sentence｜>"]
    pool = HAND[5:] + SPECIAL + WORDS
    for _ in range(150):
        out.append("".join(rng.choice(pool) if rng.random() < 0.7 else rng.choice(WORDS) for _ in range(rng.randint(1, 6))))
    return out
