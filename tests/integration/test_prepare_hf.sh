#!/usr/bin/env bash
# tools/prepare_hf.py offline (--text-file --byte-tokenizer): the llm.c header bytes, the
# documents inside the shards, the same token bytes as `latte data prepare` (u16 and u32), and
# latte reading the shards. Usage: test_prepare_hf.sh PATH_TO_LATTE
set -euo pipefail
latte=${1:?usage: test_prepare_hf.sh PATH_TO_LATTE}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 40 paragraphs (documents) of varying length, one with a non-ASCII character.
python3 - "$tmp/in.txt" <<'PY'
import sys
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for i in range(40):
        f.write("\n".join(f"document {i} line {k}" for k in range(1 + i % 4)) + "\n\n")
    f.write("caf\u00e9 au lait\n")
PY

python3 "$root/tools/prepare_hf.py" --text-file "$tmp/in.txt" --byte-tokenizer \
  --out-dir "$tmp/py16" --val-fraction 0.1 --seed 9 --shard-tokens 500 >"$tmp/py16.log"
python3 "$root/tools/prepare_hf.py" --text-file "$tmp/in.txt" --byte-tokenizer --format u32 \
  --out-dir "$tmp/py32" --val-fraction 0.1 --seed 9 >"$tmp/py32.log"
"$latte" data prepare --input "$tmp/in.txt" --out-dir "$tmp/latte16" --val-fraction 0.1 --seed 9 \
  >"$tmp/latte16.log"
"$latte" data prepare --input "$tmp/in.txt" --out-dir "$tmp/latte32" --val-fraction 0.1 --seed 9 \
  --format u32 >"$tmp/latte32.log"

# Headers, sizes and contents, read independently of both writers.
python3 - "$tmp" <<'PY'
import glob, os, struct, sys
tmp = sys.argv[1]

def read(path, magic, version, width):
    data = open(path, "rb").read()
    header = struct.unpack("<256i", data[:1024])
    assert header[0] == magic, f"{path}: magic {header[0]}, expected {magic}"
    assert header[1] == version, f"{path}: version {header[1]}, expected {version}"
    assert all(v == 0 for v in header[3:]), f"{path}: header ints 3..255 are not all 0"
    count = header[2]
    assert count > 0, f"{path}: token count {count}"
    assert len(data) == 1024 + width * count, f"{path}: {count} tokens but {len(data)} bytes"
    code = "<%d%s" % (count, "H" if width == 2 else "I")
    return list(struct.unpack(code, data[1024:]))

def tokens(pattern, magic, version, width):
    paths = sorted(glob.glob(os.path.join(tmp, pattern)))
    assert paths, f"no file matches {pattern}"
    return [t for p in paths for t in read(p, magic, version, width)], len(paths)

train16, n_train = tokens("py16/train_*.bin", 20240520, 1, 2)
val16, _ = tokens("py16/val_*.bin", 20240520, 1, 2)
assert n_train > 1, "--shard-tokens 500 should have written several train shards"
train32, _ = tokens("py32/train_*.bin", 20240801, 7, 4)
assert train32 == train16, "u16 and u32 shards hold different tokens"

# Every document, preceded by token 0, is a paragraph of the input; together they are all of
# them, and val holds round(41 * 0.1) = 4.
def documents(stream):
    assert stream[0] == 0, "the stream must start with the end-of-document token 0"
    return bytes(stream[1:]).split(b"\0")
paragraphs = open(os.path.join(tmp, "in.txt"), "rb").read().split(b"\n\n")
paragraphs = [p if p.endswith(b"\n") else p + b"\n" for p in paragraphs if p.strip()]
val_docs = documents(val16)
assert len(val_docs) == 4, f"{len(val_docs)} val documents, expected 4"
assert sorted(documents(train16) + val_docs) == sorted(paragraphs), "documents differ from input"
PY

# The same token bytes as latte's own writer (llm.c header + tokens), for both widths.
for width in 16 32; do
  for split in train val; do
    python3 - "$tmp/py$width" "$tmp/latte$width/$split.bin" "$split" <<'PY'
import glob, os, sys
shards = sorted(glob.glob(os.path.join(sys.argv[1], sys.argv[3] + "_*.bin")))
python_tokens = b"".join(open(p, "rb").read()[1024:] for p in shards)
latte_tokens = open(sys.argv[2], "rb").read()[1024:]
assert python_tokens == latte_tokens, f"{sys.argv[2]}: latte and prepare_hf.py disagree"
PY
  done
done

# latte reads the shards (a glob over several) and counts the same tokens.
info=$("$latte" data info "$tmp/py16/train_*.bin")
expected=$(sed -n 's/^train: \([0-9]*\) tokens.*/\1/p' "$tmp/py16.log")
grep -q "^total: $expected tokens in [0-9]* files, max token id 195 " <<<"$info" || {
  echo "latte data info disagrees with prepare_hf.py ($expected train tokens):" >&2
  echo "$info" >&2
  exit 1
}
echo "test_prepare_hf: ok ($expected train tokens)"
