"""Byte-level BPE: training, encoding and the Hugging Face tokenizer.json writer.

Debian has no python3-tokenizers, so the trainer is written here. The file it
writes is the standard `tokenizers` format (ByteLevel pre-tokenizer with the
GPT-2 split regex, BPE model, ByteLevel decoder), which @huggingface/tokenizers
loads in the app; `encode` here follows the same rules so that tests can show
both give identical ids.
"""
from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict

import regex

# The GPT-2 split pattern that the tokenizers ByteLevel pre-tokenizer uses.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT = regex.compile(GPT2_PATTERN)
EOT = "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def pretokenize(text: str) -> list[str]:
    """Split like ByteLevel(use_regex=True) and map each piece's UTF-8 bytes to characters."""
    return ["".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8")) for piece in _SPLIT.findall(text)]


def train(texts, vocab_size: int, special_tokens=(EOT,)) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train merges until the vocabulary (special + 256 bytes + merges) has vocab_size entries."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(pretokenize(text))
    vocab: dict[str, int] = {}
    for tok in special_tokens:
        vocab[tok] = len(vocab)
    for b in range(256):
        vocab[BYTE_TO_CHAR[b]] = len(vocab)
    words = [list(w) for w in counts]
    freqs = [counts[w] for w in counts]
    pair_count: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freqs[i]
            where[(a, b)].add(i)
    # A max-heap with lazy deletion: stale entries are skipped when popped.
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while len(vocab) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg or -neg <= 0:
            continue
        a, b = pair
        new = a + b
        merges.append(pair)
        vocab[new] = len(vocab)
        changed: set[tuple[str, str]] = set()
        for i in list(where[pair]):
            w = words[i]
            f = freqs[i]
            j = 0
            out: list[str] = []
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            if len(out) == len(w):
                continue
            for p in zip(w, w[1:]):
                pair_count[p] -= f
                changed.add(p)
            for p in zip(out, out[1:]):
                pair_count[p] += f
                where[p].add(i)
                changed.add(p)
            words[i] = out
        del where[pair]
        pair_count.pop(pair, None)
        for p in changed:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
    return vocab, merges


class Encoder:
    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], special_tokens=(EOT,)):
        self.vocab = vocab
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.special = list(special_tokens)
        self._cache: dict[str, list[int]] = {}
        self._special_split = regex.compile("(" + "|".join(regex.escape(s) for s in self.special) + ")") if self.special else None

    @classmethod
    def from_file(cls, path: str) -> "Encoder":
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in tj["model"]["merges"]]
        specials = [t["content"] for t in tj.get("added_tokens", [])]
        return cls(tj["model"]["vocab"], merges, specials)

    def _bpe(self, word: str) -> list[int]:
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        parts = list(word)
        while len(parts) > 1:
            best = None
            best_rank = None
            for k in range(len(parts) - 1):
                r = self.ranks.get((parts[k], parts[k + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = (parts[k], parts[k + 1]), r
            if best is None:
                break
            out = []
            k = 0
            while k < len(parts):
                if k + 1 < len(parts) and (parts[k], parts[k + 1]) == best:
                    out.append(parts[k] + parts[k + 1])
                    k += 2
                else:
                    out.append(parts[k])
                    k += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        self._cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        chunks = self._special_split.split(text) if self._special_split else [text]
        for chunk in chunks:
            if not chunk:
                continue
            if chunk in self.special:
                ids.append(self.vocab[chunk])
                continue
            for w in pretokenize(chunk):
                ids.extend(self._bpe(w))
        return ids

    def decode_token(self, i: int, inv: dict[int, str] | None = None) -> str:
        inv = inv or {v: k for k, v in self.vocab.items()}
        tok = inv[i]
        if tok in self.special:
            return tok
        return bytes(CHAR_TO_BYTE[c] for c in tok).decode("utf-8", errors="replace")


def tokenizer_json(vocab: dict[str, int], merges: list[tuple[str, str]], special_tokens=(EOT,)) -> dict:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for t in special_tokens
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }
