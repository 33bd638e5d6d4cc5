#!/usr/bin/env bash
# Writes the committed seed corpora under tests/fuzz/corpus/<target>/ from the project's own
# fixtures and tools. Run from the repository root after building:
#   bash tests/fuzz/make_corpus.sh build build-sanitize
# (the release build's ttt for a resolved config, the sanitizer build's fuzz_decode_state for a
# decoding state). Seeds are small on purpose: they give each target the shape of a valid input.
set -euo pipefail
release="${1:-build}"
sanitize="${2:-build-sanitize}"
out=tests/fuzz/corpus
rm -rf "$out"
mkdir -p "$out"/{fuzz_safetensors,fuzz_checkpoint_state,fuzz_zarr_metadata,fuzz_zarr_chunk,fuzz_tokenizer_json,fuzz_config_yaml,fuzz_config_overrides,fuzz_decode_state,fuzz_prepare_text}

python3 - "$out" <<'PY'
import json, os, struct, sys
out = sys.argv[1]

def safetensors(tensors, metadata):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data

with open(f"{out}/fuzz_safetensors/two_tensors", "wb") as f:
    f.write(safetensors({"w": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "n": ("I64", [], struct.pack("<q", 7))},
                        {"format": "pt", "dtype": "F32"}))
with open(f"{out}/fuzz_safetensors/bf16_empty", "wb") as f:
    f.write(safetensors({"b": ("BF16", [3], b"\x80\x3f" * 3), "e": ("F32", [0, 4], b"")}, {}))

state = {"format_version": 1, "step": 12, "loader_position": 13, "milestone": False, "has_optimizer_state": True,
         "checksums": {"model.safetensors": "0123456789abcdef", "optimizer.safetensors": "fedcba9876543210",
                       "config.yaml": "00000000000000ff"}}
with open(f"{out}/fuzz_checkpoint_state/state.json", "w") as f:
    json.dump(state, f, indent=2)
with open(f"{out}/fuzz_checkpoint_state/minimal.json", "w") as f:
    json.dump({"format_version": 1, "step": -1, "loader_position": 0}, f)

fixture = "tests/data/zarr_fixture"
for array in sorted(os.listdir(fixture)):
    meta = os.path.join(fixture, array, "zarr.json")
    if not os.path.isdir(os.path.join(fixture, array)):
        continue
    text = open(meta).read()
    open(f"{out}/fuzz_zarr_metadata/{array}.json", "w").write(text)
    m = json.loads(text)
    types = ["int32", "uint32", "int64", "uint16"]
    dtype = types.index(m["data_type"])
    chunk = m["chunk_grid"]["configuration"]["chunk_shape"][0]
    codecs = [c["name"] if isinstance(c, dict) else c for c in m["codecs"]]
    big = any(isinstance(c, dict) and c.get("configuration", {}).get("endian") == "big" for c in m["codecs"])
    if "blosc" not in codecs or chunk > 65536:
        continue
    prefix = "c/" if m["chunk_key_encoding"]["name"] == "default" else ""
    sep = m["chunk_key_encoding"].get("configuration", {}).get("separator", "/")
    key = ("c" + sep if m["chunk_key_encoding"]["name"] == "default" else "") + "0"
    path = os.path.join(fixture, array, key)
    if os.path.exists(path):
        head = bytes([dtype | (4 if big else 0), (chunk - 1) & 0xFF, ((chunk - 1) >> 8) & 0xFF])
        open(f"{out}/fuzz_zarr_chunk/{array}", "wb").write(head + open(path, "rb").read())

open(f"{out}/fuzz_config_overrides/tiny_e2e", "w").write(
    "+experiment=tiny/pretrain/pretrain-tiny-e2e\ntraining.seq_length=2048\nmodel.sliding_window_size=512")
open(f"{out}/fuzz_config_overrides/ext_3b", "w").write(
    "+deploy=interactive\n+experiment=3b/extension/ext-3b-e2e-128K\ndeploy_paths.data.books3=/x\n"
    "training.spec_inner=[a,'b,c']\n~deploy_paths.data.books3")
open(f"{out}/fuzz_config_overrides/groups", "w").write("model=350m\nbackend=gpu\ntraining=125m/ext\n"
    "training.exp_name=${oc.env:HOME,x}")

open(f"{out}/fuzz_prepare_text/utf8", "wb").write(b"\x00The and the 123,\r\n  caf\xc3\xa9 \xe2\x82\xac\rend")
open(f"{out}/fuzz_prepare_text/latin1", "wb").write(b"\x01caf\xe9 au lait\r\n")
open(f"{out}/fuzz_prepare_text/invalid", "wb").write(b"\x00ab\xff\xfecd")
PY
cp tests/data/tiny_tokenizer.json "$out/fuzz_tokenizer_json/tiny_tokenizer.json"
"$release/ttt" info +experiment=tiny/pretrain/pretrain-tiny-e2e training.exp_name=seed | sed -n '/^# Resolved/,/^# parameters/p' |
  sed '$d' > "$out/fuzz_config_yaml/tiny_e2e.yaml"
TTT_FUZZ_WRITE_SEED="$out/fuzz_decode_state/tiny_meta.safetensors" "$sanitize/tests/fuzz/fuzz_decode_state"
du -sh "$out"
