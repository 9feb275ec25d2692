#!/usr/bin/python3
"""Build the demo corpus: Python 3.11 standard-library sources + the docs' reST sources (PSF licence).

Documents are shuffled with a fixed seed and joined with <|endoftext|>; 22% is held out.
Usage: /usr/bin/python3 tools/demo/build_corpus.py OUT_DIR
"""
from __future__ import annotations

import os
import random
import sys

STDLIB = "/usr/lib/python3.11"
DOCS = "/usr/share/doc/python3.11/html/_sources"
# Generated or data-like modules: codec tables, pydoc topic dumps, build-time sysconfig.
SKIP_DIRS = {"dist-packages", "site-packages", "__pycache__", "pydoc_data", "encodings", "idlelib/Icons", "test"}
SKIP_PREFIX = ("_sysconfigdata", "config-3")
EOT = "<|endoftext|>"
MAX_DOC_BYTES = 400_000
HELDOUT_PERCENT = 22


def documents() -> list[tuple[str, str]]:
    docs = []
    for root, dirs, files in os.walk(STDLIB):
        rel = os.path.relpath(root, STDLIB)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(SKIP_PREFIX) and os.path.join(rel, d) not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".py") and not name.startswith(SKIP_PREFIX):
                docs.append(os.path.join(root, name))
    for root, dirs, files in os.walk(DOCS):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".txt"):
                docs.append(os.path.join(root, name))
    out = []
    for path in docs:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if 0 < len(text.encode("utf-8")) <= MAX_DOC_BYTES:
            out.append((path, text))
    return out


def main(out_dir: str) -> None:
    if not os.path.isdir(DOCS):
        sys.exit(f"{DOCS} is missing: apt-get install -y python3.11-doc")
    docs = documents()
    random.Random(1234).shuffle(docs)
    # The app needs >= 8192 x 128 held-out tokens (about 3.7 MB), so 22% of the documents is held out.
    n_test = max(1, len(docs) * HELDOUT_PERCENT // 100)
    test, train = docs[:n_test], docs[n_test:]
    os.makedirs(out_dir, exist_ok=True)
    for name, part in (("train.txt", train), ("heldout.txt", test)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write(EOT.join(text for _, text in part))
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        for split, part in (("train", train), ("heldout", test)):
            for path, _ in part:
                f.write(f"{split}\t{path}\n")
    size = sum(len(t.encode()) for _, t in docs)
    print(f"{len(docs)} documents, {size / 1e6:.1f} MB; held out {len(test)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ft-demo/corpus")
