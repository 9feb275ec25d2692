"""Python's BPE encoder (tools/ftlib/bpe.py) and @huggingface/tokenizers give identical ids on the whole
held-out text of the demo corpus, with the demo's tokenizer.json."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, TOOLS
from ftlib import bpe

DEMO_TOKENIZER = os.path.join(ROOT, "resources", "demo", "tokenizer.json")


def encode_with_js(tokenizer: str, text_path: str, out: str) -> np.ndarray:
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "@huggingface", "tokenizers")):
        pytest.fail("node_modules is missing: run npm ci before the Python tests")
    subprocess.run([shutil.which("node") or "node", os.path.join(TOOLS, "tests", "hf_encode.mjs"), tokenizer, text_path, out],
                   check=True, cwd=ROOT)
    return np.fromfile(out, dtype="<i4")


DEMO_PRESENT = os.path.exists(os.path.join(ROOT, "resources", "demo", "bundle.json"))


@pytest.mark.skipif(not DEMO_PRESENT, reason="resources/demo is not built yet (tools/demo/)")
def test_demo_tokenizer_agrees_on_heldout_text(tmp_path):
    subprocess.run([sys.executable, os.path.join(TOOLS, "demo", "build_corpus.py"), str(tmp_path)], check=True)
    text_path = str(tmp_path / "heldout.txt")
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    py = np.asarray(bpe.Encoder.from_file(DEMO_TOKENIZER).encode(text), dtype=np.int32)
    js = encode_with_js(DEMO_TOKENIZER, text_path, str(tmp_path / "ids.bin"))
    assert len(text) > 1_000_000
    assert len(py) == len(js)
    assert np.array_equal(py, js)


def test_edge_cases_agree(tmp_path):
    text = "\u00a0tabs\t\tand  spaces   \n\n\r\n émoji 🙂 中文 it's we'll 12345 <|endoftext|>x<|endoftext|>\x00\x1b[0m"
    vocab, merges = bpe.train([text * 4], 320)
    path = tmp_path / "tok.json"
    import json
    path.write_text(json.dumps(bpe.tokenizer_json(vocab, merges), ensure_ascii=False), encoding="utf-8")
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    js = encode_with_js(str(path), str(tmp_path / "t.txt"), str(tmp_path / "ids.bin"))
    assert np.array_equal(np.asarray(bpe.Encoder(vocab, merges).encode(text), dtype=np.int32), js)
