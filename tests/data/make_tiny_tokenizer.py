#!/usr/bin/env python3
"""Writes tiny_tokenizer.json: a minimal Hugging Face byte-level BPE tokenizer in the Llama-3
layout (256 byte tokens in GPT-2's byte alphabet, a few merges, BOS/EOS added tokens, the
Llama-3 pre-tokenizer). A small committed fixture for tests and the fuzz seed corpus: the real
Llama-3 tokenizer.json is fetched by scripts/setup.sh and never committed.
Run from the repository root: python3 tests/data/make_tiny_tokenizer.py"""
import json
import os


def bytes_to_unicode():
    # GPT-2's reversible map of bytes to printable characters (the published algorithm).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def spell(text):
    table = bytes_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


def main():
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    merges = []
    for left, right in [("t", "h"), ("th", "e"), (" ", "t"), (" t", "h"), (" th", "e"), ("a", "n"), ("an", "d"),
                        (" ", "an"), (" an", "d")]:
        merged = spell(left + right)
        merges.append(spell(left) + " " + spell(right))
        vocab.setdefault(merged, len(vocab))
    added = [
        {"id": len(vocab), "content": "<|begin_of_text|>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True},
        {"id": len(vocab) + 1, "content": "<|end_of_text|>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True},
    ]
    pattern = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
               "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    tokenizer = {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_tokenizer.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
