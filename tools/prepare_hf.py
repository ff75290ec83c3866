#!/usr/bin/env python3
"""Tokenize text into llm.c token shards that latte (and llm.c) read.

Hugging Face mode (needs internet and the `datasets` package plus `transformers` or
`tokenizers`, imported only when used):
    tools/prepare_hf.py --out-dir data/smollm
tokenizes HuggingFaceTB/smollm-corpus (config cosmopedia-v2) with the HuggingFaceTB/SmolLM-135M
tokenizer, up to --max-tokens tokens.

Offline mode (no imports beyond the standard library):
    tools/prepare_hf.py --text-file notes.txt --byte-tokenizer --out-dir data/notes
splits a local text file into documents at blank lines and uses byte tokens (vocabulary 256),
exactly as `latte data prepare --input notes.txt` does; both write the same token bytes.

Every document is preceded by the end-of-text token (the tokenizer's EOS, or byte 0). The
documents are split into train and val with latte's seeded shuffle (splitmix64, Fisher-Yates,
round(n * val_fraction) documents to val, at least one on each side), then written as
OUT_DIR/train_000000.bin, train_000001.bin, ... and val_000000.bin, ... of at most
--shard-tokens tokens each: uint16 tokens (magic 20240520, version 1) when the vocabulary has
fewer than 65536 entries, else uint32 (magic 20240801, version 7). The selected documents are
held in memory (about 4 bytes per token) so that the split is exact.
"""

import argparse
import math
import os
import struct
import sys
from array import array

MAGIC_U16, VERSION_U16 = 20240520, 1
MAGIC_U32, VERSION_U32 = 20240801, 7
HEADER_INTS = 256
BYTE_VOCAB_SIZE = 256
BYTE_EOT = 0
MASK64 = (1 << 64) - 1


def splitmix64_at(seed, index):
    """The index-th output of splitmix64 seeded with `seed` (as latte's splitmix64_at)."""
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def uniform_below(random, n):
    return (random * n) >> 64


def round_half_away(x):
    """C's llround for x >= 0 (Python's round() rounds halves to even)."""
    whole = math.floor(x)
    return int(whole) + (1 if x - whole >= 0.5 else 0)


def split_train_val(documents, val_fraction, seed):
    """latte's split_train_val: returns (train, val) lists in shuffled order."""
    n = len(documents)
    if not 0.0 < val_fraction < 1.0:
        sys.exit(f"prepare_hf: --val-fraction {val_fraction} must be in (0, 1)")
    if n < 2:
        sys.exit(f"prepare_hf: {n} document(s); a train/val split needs at least 2")
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = uniform_below(splitmix64_at(seed, n - 1 - i), i + 1)
        order[i], order[j] = order[j], order[i]
    num_val = min(max(round_half_away(n * val_fraction), 1), n - 1)
    val = [documents[k] for k in order[:num_val]]
    train = [documents[k] for k in order[num_val:]]
    return train, val


def paragraphs(data):
    """Documents of `data` (bytes) separated by blank lines, as latte's split_documents."""
    documents, current = [], []
    lines = data.split(b"\n")
    for index, line in enumerate(lines):
        if index + 1 < len(lines):
            line += b"\n"
        elif not line:
            break
        if line.strip(b" \t\r\n\f\v"):
            current.append(line)
        elif current:
            documents.append(b"".join(current))
            current = []
    if current:
        documents.append(b"".join(current))
    return documents


def write_shard(path, tokens, use_u32):
    """Writes one llm.c shard atomically (temporary file, then rename)."""
    if not tokens:
        sys.exit(f"prepare_hf: refusing to write an empty shard {path}")
    if len(tokens) > 2**31 - 1:
        sys.exit(f"prepare_hf: {len(tokens)} tokens exceed the int32 count of {path}")
    if use_u32:
        magic, version, code = MAGIC_U32, VERSION_U32, "I"
    else:
        magic, version, code = MAGIC_U16, VERSION_U16, "H"
    try:
        body = array(code, tokens)
    except OverflowError:
        sys.exit(f"prepare_hf: {path}: a token id does not fit u16; use --format u32")
    if body.itemsize != (4 if use_u32 else 2):
        sys.exit(f"prepare_hf: array('{code}') has {body.itemsize}-byte items on this machine")
    if sys.byteorder == "big":
        body.byteswap()
    header_ints = [magic, version, len(tokens)] + [0] * (HEADER_INTS - 3)
    header = struct.pack(f"<{HEADER_INTS}i", *header_ints)
    temp = f"{path}.tmp.{os.getpid()}"
    with open(temp, "wb") as f:
        f.write(header)
        body.tofile(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


def write_split(out_dir, name, documents, eot, use_u32, shard_tokens):
    """Joins documents (EOT before each) and writes them as numbered shards; returns
    (token count, shard paths)."""
    tokens = array("I")
    for document in documents:
        tokens.append(eot)
        tokens.extend(document)
    paths = []
    for index, begin in enumerate(range(0, len(tokens), shard_tokens)):
        path = os.path.join(out_dir, f"{name}_{index:06d}.bin")
        write_shard(path, tokens[begin : begin + shard_tokens], use_u32)
        paths.append(path)
    return len(tokens), paths


def byte_documents(text_file):
    try:
        with open(text_file, "rb") as f:
            data = f.read()
    except OSError as e:
        sys.exit(f"prepare_hf: --text-file {text_file}: {e.strerror}")
    return [array("I", list(document)) for document in paragraphs(data)]


def load_tokenizer(name, eot_token):
    """Returns (encode_batch, eot id, vocabulary size) for a Hugging Face tokenizer."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        AutoTokenizer = None
    if AutoTokenizer is not None:
        tokenizer = AutoTokenizer.from_pretrained(name)
        eot = tokenizer.convert_tokens_to_ids(eot_token) if eot_token else tokenizer.eos_token_id

        def encode(texts):
            return tokenizer(texts, add_special_tokens=False)["input_ids"]

        vocab_size = len(tokenizer)
    else:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_pretrained(name)
        eot = tokenizer.token_to_id(eot_token or "<|endoftext|>")

        def encode(texts):
            return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

        vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    if eot is None:
        sys.exit(f"prepare_hf: tokenizer {name} has no end-of-text token; give --eot-token")
    return encode, eot, vocab_size


def hf_documents(args, encode):
    """Tokenized documents of the dataset, in stream order, until --max-tokens."""
    from datasets import load_dataset

    stream = load_dataset(args.dataset, args.config, split=args.split, streaming=True)
    documents, total, texts = [], 0, []

    def flush():
        nonlocal total
        for ids in encode(texts):
            if args.max_tokens and total >= args.max_tokens:
                break
            documents.append(array("I", ids))
            total += len(ids) + 1
        texts.clear()

    for example in stream:
        texts.append(example[args.text_field])
        if len(texts) == 256:
            flush()
            if args.max_tokens and total >= args.max_tokens:
                break
    if texts:
        flush()
    return documents


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", required=True, help="output directory (created when missing)")
    p.add_argument("--dataset", default="HuggingFaceTB/smollm-corpus")
    p.add_argument("--config", default="cosmopedia-v2", help="dataset configuration")
    p.add_argument("--split", default="train", help="dataset split to read")
    p.add_argument("--text-field", default="text")
    p.add_argument("--tokenizer", default="HuggingFaceTB/SmolLM-135M")
    p.add_argument("--eot-token", default=None,
                   help="end-of-text token (default: the tokenizer's EOS)")
    p.add_argument("--max-tokens", type=int, default=100_000_000,
                   help="stop after this many tokens (0: all)")
    p.add_argument("--text-file", default=None,
                   help="tokenize this local text file instead of a dataset")
    p.add_argument("--byte-tokenizer", action="store_true",
                   help="byte tokens (vocabulary 256, EOT 0)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1234, help="seed of the document shuffle")
    p.add_argument("--shard-tokens", type=int, default=100_000_000, help="tokens per shard file")
    p.add_argument("--format", choices=["auto", "u16", "u32"], default="auto",
                   help="token width; auto: u16 when the vocabulary has < 65536 entries")
    args = p.parse_args(argv)
    if not 0 < args.shard_tokens < 2**31:
        p.error("--shard-tokens must be in [1, 2^31)")
    if not 0 <= args.seed < 2**64:
        p.error("--seed must be in [0, 2^64)")
    if args.text_file and not args.byte_tokenizer:
        p.error("--text-file needs --byte-tokenizer")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.byte_tokenizer:
        if not args.text_file:
            sys.exit("prepare_hf: --byte-tokenizer works on a local --text-file")
        documents, eot, vocab_size = byte_documents(args.text_file), BYTE_EOT, BYTE_VOCAB_SIZE
        source = args.text_file
    else:
        encode, eot, vocab_size = load_tokenizer(args.tokenizer, args.eot_token)
        documents = hf_documents(args, encode)
        source = f"{args.dataset} ({args.config}, {args.split}) tokenized by {args.tokenizer}"
    use_u32 = args.format == "u32" or (args.format == "auto" and vocab_size >= 65536)
    train, val = split_train_val(documents, args.val_fraction, args.seed)
    try:
        os.makedirs(args.out_dir, exist_ok=True)
    except OSError as e:
        sys.exit(f"prepare_hf: --out-dir {args.out_dir}: cannot create it: {e.strerror}")
    train_tokens, train_paths = write_split(
        args.out_dir, "train", train, eot, use_u32, args.shard_tokens)
    val_tokens, val_paths = write_split(args.out_dir, "val", val, eot, use_u32, args.shard_tokens)
    width = "u32" if use_u32 else "u16"
    print(f"source: {source}; vocabulary {vocab_size}, end-of-text token {eot}, {width} tokens")
    print(f"documents: {len(documents)} (train {len(train)}, val {len(val)})")
    outputs = (("train", train_tokens, train_paths), ("val", val_tokens, val_paths))
    for name, count, paths in outputs:
        pattern = os.path.join(args.out_dir, f"{name}_*.bin")
        print(f"{name}: {count} tokens in {len(paths)} shard(s), {pattern}")


if __name__ == "__main__":
    main()
