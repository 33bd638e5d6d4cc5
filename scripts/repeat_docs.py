#!/usr/bin/env python3
"""Writes the documents of the repeated-passage probe (scripts/copying.sh; docs/results.md): how much
a model recalls of a passage it read LENGTH tokens earlier. Each document is a passage X of
LENGTH bytes of held-out text followed by X again (`repeat/`), or by the next LENGTH bytes (`control/`),
so that with the byte tokenizer (BOS and EOS added) a document is exactly 2 * LENGTH + 2 tokens and
every evaluation sequence of that length is one document, aligned: positions 2..LENGTH read X the
first time, positions LENGTH + 2 .. 2 * LENGTH read its copy (or fresh text) LENGTH bytes after it.
Text is kept to ASCII so that a byte is a character.

  scripts/repeat_docs.py OUT_DIR BOOK... [--length 127] [--count 512] [--skip 1000]
"""
import argparse
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("books", nargs="+")
    parser.add_argument("--length", type=int, default=127)
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--skip", type=int, default=1000, help="bytes skipped at the start (the licence header)")
    args = parser.parse_args()
    text = "".join(open(b, "rb").read().decode("utf-8", "replace") for b in args.books)
    text = text.replace("\r\n", "\n").encode("ascii", "ignore").decode()
    need = args.skip + 2 * args.length * args.count
    if len(text) < need:
        raise SystemExit(f"repeat_docs.py: the books hold {len(text)} ASCII bytes, fewer than the {need} needed")
    for kind in ("repeat", "control"):
        os.makedirs(os.path.join(args.out, kind), exist_ok=True)
        for i in range(args.count):
            start = args.skip + 2 * args.length * i
            first = text[start:start + args.length]
            second = first if kind == "repeat" else text[start + args.length:start + 2 * args.length]
            with open(os.path.join(args.out, kind, f"d{i:05d}.txt"), "w") as f:
                f.write(first + second)


if __name__ == "__main__":
    main()
