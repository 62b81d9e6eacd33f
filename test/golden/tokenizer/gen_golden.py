#!/usr/bin/env python3
"""Reference ids for sw_tokenizer, from the Python `tokenizers` package (pip install tokenizers;
no torch needed).

Modes (run from the repository root):
  gen_golden.py --corpus   rebuild test/golden/tokenizer/corpus.jsonl: the hand-written lines
                           below, excerpts of public-domain books from ../shared/data when
                           present, and seeded random Unicode strings
  gen_golden.py --synth    retrain the small synthetic tokenizers in synth/ (they cover the
                           components the three shipped tokenizers do not use)
  gen_golden.py            write <name>.ids.jsonl.gz for every tokenizer (the default)

UPDATE_GOLDEN=1 is accepted as an alias of the default mode, per the repository convention.

Each golden file is gzip'ed JSON lines: a header {"tokenizer", "tokenizers_version",
"corpus_sha256", "lines"} and then, per corpus line:
  ids       encode(text, add_special_tokens=False).ids
  ids_sp    encode(text, add_special_tokens=True).ids
  dec       decode(ids, skip_special_tokens=False)
  dec_sp    decode(ids_sp, skip_special_tokens=False)
  dec_skip  decode(ids_sp, skip_special_tokens=True)
"""
import gzip
import hashlib
import json
import os
import random
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CORPUS = os.path.join(HERE, "corpus.jsonl")
SYNTH = os.path.join(HERE, "synth")
SHARED = os.path.join(ROOT, "..", "shared", "data")
SHIPPED = ["qwen3", "llama3", "llama2"]

# ---------------------------------------------------------------------------------------------
# corpus

HAND = [
    "",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "   \n\n\t  \r\n ",
    "Hello, world!",
    "hello world",
    " leading space",
    "   three leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "multiple   spaces    between     words",
    "tab\tseparated\tvalues\t1\t2\t3",
    "windows\r\nline\r\nendings\r\n",
    "mixed \r\n\t \n whitespace \t\n",
    "only\n\n\n\nnewlines",
    "\u00a0non-breaking\u00a0spaces\u00a0",
    "ideographic\u3000space\u3000\u3000x",
    "em\u2003space and thin\u2009space and narrow\u202fnbsp",
    "line\u2028separator\u2029paragraph",
    "next\u0085line",
    "mongolian\u180evowel separator",
    "zero\u200bwidth\u200cnon\u200djoiner",
    "\ufeffBOM at start",
    "I'm sure you're right, they've said it's John's and we'll see; I'd go.",
    "I'M SURE YOU'RE RIGHT, THEY'VE SAID IT'S JOHN'S AND WE'LL SEE; I'D GO.",
    "don't DON'T Don'T dOn't can't won't shouldn't",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D",
    "The dog's bone's gone'",
    "rock 'n' roll ''quoted'' `backtick`",
    "curly \u2019s \u2019t apostrophes \u2018quoted\u2019 \u201cdouble\u201d",
    "long s contraction: it\u017f and IT\u017f",
    "0",
    "7",
    "42",
    "123",
    "1234",
    "12345",
    "1234567890",
    "3.14159265358979323846264338327950288419716939937510",
    "1,000,000 and 1.000.000 and 1 000 000",
    "2024-01-15T12:34:56.789Z",
    "+1 (555) 123-4567",
    "0x1F600 0b1010 0o777 1e-10 6.022e23",
    "99999999999999999999999999999999999999999999999999999999999999999999999999999999",
    "Ⅻ ½ ¾ ² ³ ① ⑳ ٣ ۴ ५ ৬ ๗ 〇 一二三",
    "Full-width: ＡＢＣ ａｂｃ １２３ ！？（）",
    "Ligatures: ﬁne ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ",
    "Composed é vs decomposed e\u0301, Å vs A\u030a, ñ vs n\u0303",
    "e\u0301\u0301\u0301 stacked combining marks",
    "\u0301 leading combining mark",
    "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a\u030b",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349algo text",
    "Hangul jamo: \u1100\u1161\u11a8 vs \uac01",
    "Kana with voicing mark: \u304b\u3099 vs \u304c, \u30cf\u309a vs \u30d1",
    "Ångström \u212b Kelvin \u212a Ohm \u2126",
    "Ǆ ǅ ǆ ﬀ ẞ ß İ ı",
    "Ελληνικά: Σίσυφος ΣΊΣΥΦΟΣ",
    "Русский текст: Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "עברית: שלום עולם",
    "العربية: مرحبا بالعالم، كيف حالك؟",
    "हिन्दी: नमस्ते दुनिया",
    "ไทย: สวัสดีชาวโลก",
    "Tiếng Việt: Xin chào thế giới, tôi là một con mèo.",
    "你好，世界！",
    "这是一个测试。我们正在测试分词器的正确性。",
    "中文和English混合的句子，包括数字123和标点符号。",
    "《红楼梦》是中国古典四大名著之一。",
    "日本語のテキスト：こんにちは世界。今日はいい天気ですね。",
    "カタカナとひらがなと漢字が混ざった文章です。",
    "한국어 텍스트: 안녕하세요 세계. 오늘 날씨가 좋네요.",
    "Emoji: 😀 😃 😄 😁 😆 😅 😂 🤣",
    "Skin tones: 👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
    "ZWJ family: 👨\u200d👩\u200d👧\u200d👦 and 👩\u200d💻 and 🏳\ufe0f\u200d🌈",
    "Flags: 🇺🇸 🇨🇳 🇯🇵 🇰🇷 🇩🇪",
    "Keycaps: 1\ufe0f\u20e3 #\ufe0f\u20e3 *\ufe0f\u20e3",
    "😀😀😀😀😀😀😀😀😀😀",
    "Math: ∀x∈ℝ, ∃y: x² + y² = z²; ∑ᵢ aᵢ ≤ ∞",
    "Symbols: © ® ™ § ¶ † ‡ • … ‰ ′ ″ € £ ¥ ₹ ₿",
    "Box: ┌─┐│└┘ ░▒▓█",
    "Private use: \ue000\uf8ff and noncharacters \ufdd0\uffff",
    "Replacement char: \ufffd",
    "NUL byte: a\u0000b",
    "Control: \u0001\u0002\u001b[31mred\u001b[0m\u007f",
    "Unicode 15/16: \U00031350\U0002ebf0 \U000105c0\U000105c1 \u1c89 \ua7cb \U00011f50",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|endoftext|>more text",
    "<|endoftext|><|endoftext|><|endoftext|>",
    "<s>",
    "</s>",
    "<s>hello</s>",
    " <s> spaced </s> ",
    "<unk>",
    "<|begin_of_text|>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "<|eot_id|>",
    "<|reserved_special_token_0|><|reserved_special_token_250|>",
    "<think>\nreasoning\n</think>\nanswer",
    "<|im_sta",
    "<|im_start",
    "im_start|>",
    "<|endoftext",
    "<|<|endoftext|>|>",
    "<s<s>>",
    "<<s>>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "[CLS] hello [SEP] world [MASK]",
    "<mask> My name <mask> A<mask> <mask>ony <mask>",
    "Hello World hello world HELLO WORLD",
    "<tag>   after tag and <tag>",
    "a-b-c--d",
    "over-scrupulous, well-known; state-of-the-art",
    "email: someone@example.com, url: https://example.com/path?q=1&r=2#frag",
    "path: C:\\Users\\name\\file.txt and /usr/local/bin/",
    "JSON: {\"key\": [1, 2, {\"nested\": null}], \"flag\": true}",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "class Foo:\n\tdef __init__(self):\n\t\tself.x = 1  # tab indented\n\n\tdef bar(self) -> int:\n\t\treturn self.x\n",
    "#include <stdio.h>\n\nint main(void) {\n    printf(\"hello, world\\n\");\n    return 0;\n}\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n",
    "function add(a, b) {\n  return a + b;\n}\nconst x = add(1, 2);  // 3\nconsole.log(`x = ${x}`);\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do\n  echo \"$f\" | wc -c\ndone\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "<html><body><p class=\"x\">Hello &amp; welcome</p></body></html>",
    "\\begin{equation} E = mc^2 \\end{equation}",
    "    deeply\n        nested\n            indentation\n                levels\n",
    "if (a&&b||!c) { x+=1; y-=2; z*=3; w/=4; } else { return; }",
    "a = [1,2,3]; b = {'k': 'v'}; c = (4, 5)",
    "// comment\n/* block\n comment */\n",
    "x" * 1000,
    " " * 1000,
    "\n" * 200,
    "ab" * 500,
    "é" * 300,
    "中" * 500,
    "😀" * 250,
    "1" * 1000,
    "-" * 300 + "=" * 300,
    "a " * 500,
    "\t" * 100 + "x",
    " " * 37 + "after spaces",
    "word " * 100 + " " * 20,
]

RANDOM_POOLS = [
    [chr(c) for c in range(0x20, 0x7F)] * 3,
    list(" \t\n\r\u00a0\u3000\u2028\u0085\u180e\u2003\u200b\ufeff") * 2,
    [chr(c) for c in range(0x300, 0x370)],
    [chr(c) for c in range(0x4E00, 0x4E00 + 300)],
    [chr(c) for c in range(0x3040, 0x3100)],
    [chr(c) for c in range(0x1100, 0x1200)] + [chr(c) for c in range(0xAC00, 0xAC00 + 200)],
    [chr(c) for c in range(0x1F300, 0x1F650)] + ["\u200d", "\ufe0f"] + [chr(c) for c in range(0x1F3FB, 0x1F400)],
    [chr(c) for c in range(0xFF01, 0xFF5F)] + [chr(c) for c in range(0xFB00, 0xFB07)],
    [chr(c) for c in range(0x0660, 0x066A)] + [chr(c) for c in range(0x0966, 0x0970)] + list("0123456789"),
    ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'\u017f", "'"],
    ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<|", "|>", "<|eot_id|>",
     "<|begin_of_text|>", "<unk>", "<mask>", "[SEP]", "<tag>", "<think>", "<0x41>"],
    [chr(c) for c in range(0x0400, 0x0460)] + [chr(c) for c in range(0x0590, 0x0600)],
    ["\U00031350", "\U000105c0", "\u1c89", "\ua7cb", "\U00011f50", "\ue000", "\ufffd", "\u0000",
     "\uffff", "\U0010fffd", "\u0130", "\u212a", "\u1e9e"],
    [chr(c) for c in range(0x2000, 0x2070)],
]


def random_strings(n, seed=20240611):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.choice([0, 1, 2, 3, 5, 8, 13, 21, 34, 60])
        pools = rng.sample(RANDOM_POOLS, rng.randint(1, 4))
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(k)))
    return out


def book_excerpts():
    """Paragraphs of public-domain books (Project Gutenberg; 红楼梦), when ../shared has them."""
    out = []
    gut = os.path.join(SHARED, "gutenberg_en")
    for name, skip, count in [("Pride_and_Prejudice_JaneAusten.txt.gz", 60, 25),
                              ("2701-0.txt.gz", 400, 20), ("11-0.txt.gz", 120, 15)]:
        path = os.path.join(gut, name)
        if not os.path.exists(path):
            continue
        text = gzip.open(path).read().decode("utf-8")
        paras = [p for p in text.split("\r\n\r\n") if p.strip()]
        out += paras[skip:skip + count]
    path = os.path.join(gut, "98-0.txt.gz")
    if os.path.exists(path):  # one ~20 KB stretch with its line breaks
        text = gzip.open(path).read().decode("utf-8")
        start = text.index("It was the best of times")
        out.append(text[start:start + 20000])
    path = os.path.join(SHARED, "zh_classics", "红楼梦.txt.gz")
    if os.path.exists(path):
        text = gzip.open(path).read().decode("utf-8", "replace")
        paras = [p for p in text.split("\n") if p.strip()]
        out += paras[5:45]
    return out


def write_corpus():
    lines = HAND + book_excerpts() + random_strings(400)
    with open(CORPUS, "w", encoding="utf-8") as f:
        for t in lines:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    print(f"wrote {CORPUS}: {len(lines)} lines")


# ---------------------------------------------------------------------------------------------
# synthetic tokenizers: small BPE models trained on the corpus, one per family of components


def train(tok, corpus, vocab_size, specials, **kw):
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  show_progress=False, **kw)
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def with_byte_fallback(tok):
    """Add <0x00>..<0xFF> to the vocabulary and turn byte_fallback on."""
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    for b in range(256):
        name = "<0x%02X>" % b
        if name not in vocab:
            vocab[name] = len(vocab)
    j["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(j))


def synth_tokenizers(corpus):
    out = {}

    # SentencePiece style without a normalizer: Metaspace(first), byte fallback, fused unk
    t = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first",
                                               split=False)
    t.decoder = decoders.Sequence([decoders.Metaspace(replacement="\u2581", prepend_scheme="first"),
                                   decoders.ByteFallback(), decoders.Fuse()])
    train(t, corpus, 700, ["<unk>", "<s>", "</s>"], limit_alphabet=150)
    t = with_byte_fallback(t)
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, special=True,
                                     normalized=False)])
    t.add_tokens([AddedToken("[SEP]", single_word=True, normalized=False)])
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", t.token_to_id("<s>")), ("</s>", t.token_to_id("</s>"))])
    out["synth_sp"] = t

    # BERT-like: BertNormalizer, BertPreTokenizer, ## prefix and </w> suffix, BPEDecoder
    t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##",
                             end_of_word_suffix="</w>"))
    t.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                              strip_accents=None, lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    t.decoder = decoders.BPEDecoder(suffix="</w>")
    train(t, corpus, 900, ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"],
          continuing_subword_prefix="##", end_of_word_suffix="</w>", limit_alphabet=200)
    t.post_processor = processors.BertProcessing(("[SEP]", t.token_to_id("[SEP]")),
                                                 ("[CLS]", t.token_to_id("[CLS]")))
    t.add_tokens([AddedToken("hello world", normalized=True),
                  AddedToken("mask", single_word=True, normalized=True)])
    out["synth_bert"] = t

    # A normalizer sequence and several Split behaviours
    t = Tokenizer(models.BPE(unk_token="[UNK]"))
    t.normalizer = normalizers.Sequence([
        normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase(),
        normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip(),
        normalizers.Prepend("^"), normalizers.Replace("``", '"')])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\d+|[a-z]+"), behavior="merged_with_previous"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Punctuation(behavior="contiguous"),
        pre_tokenizers.WhitespaceSplit()])
    # (Strip before Replace: `tokenizers`' Strip panics on an empty token when stop > 0)
    t.decoder = decoders.Sequence([decoders.Strip(" ", 1, 1), decoders.Replace("^", ""),
                                   decoders.Fuse()])
    train(t, corpus, 700, ["[UNK]", "<s>", "</s>"], limit_alphabet=150)
    t.post_processor = processors.RobertaProcessing(("</s>", t.token_to_id("</s>")),
                                                    ("<s>", t.token_to_id("<s>")))
    t.add_tokens([AddedToken("<tag>", rstrip=True, normalized=False),
                  AddedToken("hello", normalized=True, lstrip=True)])
    out["synth_split"] = t

    # String and regex splits with invert, MergedWithNext, Removed, CharDelimiterSplit
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace("''", '"')])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[,.;:!?]"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[\p{L}\p{M}]+|\s+"), behavior="removed", invert=True),
        pre_tokenizers.CharDelimiterSplit("-")])
    t.decoder = decoders.Sequence([decoders.Fuse(), decoders.Strip("a", 1, 0)])
    train(t, corpus, 700, ["<unk>"], limit_alphabet=150)
    out["synth_split2"] = t

    # GPT-2 / RoBERTa style byte level with add_prefix_space and a lowercasing normalizer
    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.Lowercase()
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    t.decoder = decoders.ByteLevel()
    train(t, corpus, 800, ["<s>", "</s>", "<pad>"],
          initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", t.token_to_id("<s>")), ("</s>", t.token_to_id("</s>"))])
    t.add_tokens([AddedToken("hello", normalized=True), AddedToken("World", normalized=False)])
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    out["synth_bytelevel"] = t

    # Whitespace + Digits, NFKC, ignore_merges
    t = Tokenizer(models.BPE(unk_token="<unk>", ignore_merges=True))
    t.normalizer = normalizers.NFKC()
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                               pre_tokenizers.Digits(individual_digits=False)])
    t.decoder = decoders.Sequence([decoders.Replace(Regex(r"[aeiou]"), "*"), decoders.Fuse()])
    train(t, corpus, 600, ["<unk>"], limit_alphabet=150)
    out["synth_ws"] = t

    # Metaspace always + split, NFD, Metaspace decoder; left Strip normalizer
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.normalizer = normalizers.Sequence([normalizers.Strip(left=True, right=False),
                                         normalizers.NFD(), normalizers.Replace("!", "!!")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="_", prepend_scheme="always", split=True)
    t.decoder = decoders.Metaspace(replacement="_", prepend_scheme="always", split=True)
    train(t, corpus, 600, ["<unk>"], limit_alphabet=150)
    out["synth_meta"] = t

    # truncation (left) and fixed-length padding on the SentencePiece-style model; truncation
    # (right) and pad-to-multiple on the byte-level one
    t = Tokenizer.from_str(out["synth_sp"].to_str())
    t.enable_truncation(max_length=24, direction="left")
    t.enable_padding(length=32, pad_id=3, pad_token="</s>", direction="right")
    out["synth_sp_trunc"] = t
    t = Tokenizer.from_str(out["synth_bytelevel"].to_str())
    t.enable_truncation(max_length=10, direction="right")
    t.enable_padding(pad_id=2, pad_token="<pad>", pad_to_multiple_of=8, direction="left")
    out["synth_bl_trunc"] = t
    return out


def write_synth(corpus):
    os.makedirs(SYNTH, exist_ok=True)
    for name, t in synth_tokenizers(corpus).items():
        data = json.dumps(json.loads(t.to_str()), ensure_ascii=False, indent=1).encode("utf-8")
        path = os.path.join(SYNTH, name + ".json.gz")
        with open(path, "wb") as f:  # mtime 0: reproducible bytes
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
                g.write(data)
        print(f"wrote {path}")


# ---------------------------------------------------------------------------------------------
# goldens


def tokenizer_paths():
    out = {}
    for name in SHIPPED:
        out[name] = os.path.join(ROOT, "data", "tokenizers", name, "tokenizer.json.gz")
    if os.path.isdir(SYNTH):
        for f in sorted(os.listdir(SYNTH)):
            if f.endswith(".json.gz"):
                out[f[:-len(".json.gz")]] = os.path.join(SYNTH, f)
    return out


def write_goldens(corpus, corpus_sha):
    for name, path in tokenizer_paths().items():
        tok = Tokenizer.from_str(gzip.open(path).read().decode("utf-8"))
        out = os.path.join(HERE, name + ".ids.jsonl.gz")
        with open(out, "wb") as f:
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
                head = {"tokenizer": name, "tokenizers_version": tokenizers.__version__
                        if hasattr(tokenizers, "__version__") else pkg_version(),
                        "corpus_sha256": corpus_sha, "lines": len(corpus)}
                g.write((json.dumps(head) + "\n").encode())
                for text in corpus:
                    ids = tok.encode(text, add_special_tokens=False).ids
                    ids_sp = tok.encode(text, add_special_tokens=True).ids
                    rec = {"ids": ids, "ids_sp": ids_sp,
                           "dec": tok.decode(ids, skip_special_tokens=False),
                           "dec_sp": tok.decode(ids_sp, skip_special_tokens=False),
                           "dec_skip": tok.decode(ids_sp, skip_special_tokens=True)}
                    g.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
        print(f"wrote {out}")


def pkg_version():
    from importlib.metadata import version
    return version("tokenizers")


def main():
    if "--corpus" in sys.argv:
        write_corpus()
        return
    raw = open(CORPUS, "rb").read()
    corpus = [json.loads(l) for l in raw.decode("utf-8").split("\n") if l]
    if "--synth" in sys.argv:
        write_synth(corpus)
        return
    write_goldens(corpus, hashlib.sha256(raw).hexdigest())


if __name__ == "__main__":
    main()
