#!/usr/bin/python3
"""Train the demo's byte-level BPE (vocab 8192) on the training split and write tokenizer.json.
Usage: /usr/bin/python3 tools/demo/train_tokenizer.py CORPUS_DIR OUT_JSON [VOCAB]"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ftlib import bpe  # noqa: E402


def main(corpus: str, out: str, vocab_size: int = 8192) -> None:
    with open(os.path.join(corpus, "train.txt"), encoding="utf-8") as f:
        docs = f.read().split(bpe.EOT)
    t = time.time()
    vocab, merges = bpe.train(docs, vocab_size)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_json(vocab, merges), f, ensure_ascii=False)
    print(f"vocab {len(vocab)}, {len(merges)} merges in {time.time() - t:.0f}s -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 8192)
