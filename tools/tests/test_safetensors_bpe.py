import json
import os

import numpy as np

from ftlib import bpe, safetensors_io


def test_safetensors_round_trip_and_layout(tmp_path):
    t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -2], dtype=np.int32),
         "c": np.array([0.5, 1e-3], dtype=np.float16)}
    path = tmp_path / "x.safetensors"
    safetensors_io.save(str(path), t)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    assert header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": header["a"]["data_offsets"]}
    assert (8 + n) % 8 == 0
    back = safetensors_io.load(str(path))
    for k in t:
        assert back[k].dtype == t[k].dtype and np.array_equal(back[k], t[k])


def test_bpe_round_trip_and_merges():
    text = "hello hello world\n\tdef f(x): return x + 1  # ünïcode"
    vocab, merges = bpe.train([text * 3], 280)
    enc = bpe.Encoder(vocab, merges)
    ids = enc.encode(text + bpe.EOT + text)
    inv = {v: k for k, v in vocab.items()}
    decoded = "".join(enc.decode_token(i, inv) for i in ids)
    assert decoded == text + bpe.EOT + text
    assert ids.count(vocab[bpe.EOT]) == 1
    # "hello" occurs 6 times: it must have become one token (with or without its leading space).
    assert any(inv[i] in ("hello", "Ġhello") for i in ids)
    assert len(ids) < len((text + text).encode()) // 2


def test_tokenizer_json_shape():
    vocab, merges = bpe.train(["abc abc abd"], 262)
    tj = bpe.tokenizer_json(vocab, merges)
    assert tj["model"]["type"] == "BPE" and tj["pre_tokenizer"]["type"] == "ByteLevel"
    assert all(len(m.split(" ")) == 2 for m in tj["model"]["merges"])
    assert tj["added_tokens"][0]["content"] == bpe.EOT and tj["added_tokens"][0]["id"] == 0
