#!/usr/bin/python3
"""Writes tests/data/zarr_fixture: a small zarr v3 group for test_zarr, produced independently of
the C++ writer by following the zarr v3 spec directly (zarr-python is not needed).

Needs Debian's python3 with python3-blosc and python3-numpy:
    apt-get install -y python3-blosc python3-numpy
    /usr/bin/python3 tests/data/make_zarr_fixture.py          # regenerate the fixture
    /usr/bin/python3 tests/data/make_zarr_fixture.py --dump DIR [START COUNT]
                                                               # decode any 1-D array we support

Contents (value formulas are repeated in tests/test_zarr.cpp; change both together):
  train    int32,  length 1000, chunk 128, key c/<i>, LE, blosc zstd/3/shuffle, fill -1,
           value(i) = (7*i + 3) % 50000 - 20000; chunk 3 deliberately not written.
  val      uint16, length 300, chunk 64, key c.<i>, LE, blosc lz4/5/shuffle, fill 0,
           value(i) = (7919*i + 3) % 65536.
  ids_u32  uint32, length 200, chunk 50, v2 key <i>, BIG endian, blosc zstd/1/bitshuffle, fill 0,
           value(i) = (2654435761*i + 3) % 2**32.
  big_i64  int64,  length 100, chunk 128 (longer than the array), key c/<i>, LE, no compression,
           fill 7, value(i) = (0x9E3779B97F4A7C15*i + 3) mod 2**64 read as signed.
"""
import json
import os
import shutil
import sys

import blosc
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "zarr_fixture")

NUMPY_TYPES = {"int32": "i4", "uint32": "u4", "int64": "i8", "uint16": "u2"}
SHUFFLES = {"noshuffle": blosc.NOSHUFFLE, "shuffle": blosc.SHUFFLE, "bitshuffle": blosc.BITSHUFFLE}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def chunk_key(encoding, index):
    name = encoding["name"]
    sep = encoding.get("configuration", {}).get("separator", "/" if name == "default" else ".")
    return "c" + sep + str(index) if name == "default" else str(index)


def write_array(path, values, dtype, chunk, fill, endian, key_encoding, blosc_config, skip_chunks=(),
                extra=None):
    """One 1-D array: full-size chunks (the last padded with fill), then zarr.json."""
    os.makedirs(path)
    np_type = (">" if endian == "big" else "<") + NUMPY_TYPES[dtype]
    codecs = [{"name": "bytes", "configuration": {"endian": endian}}]
    if blosc_config is not None:
        codecs.append({"name": "blosc", "configuration": blosc_config})
    n_chunks = (len(values) + chunk - 1) // chunk
    for c in range(n_chunks):
        if c in skip_chunks:
            continue
        piece = np.full(chunk, fill, dtype=np_type)
        part = values[c * chunk:(c + 1) * chunk]
        piece[:len(part)] = part
        data = piece.tobytes()
        if blosc_config is not None:
            data = blosc.compress(data, typesize=blosc_config["typesize"], clevel=blosc_config["clevel"],
                                  shuffle=SHUFFLES[blosc_config["shuffle"]], cname=blosc_config["cname"])
        file = os.path.join(path, chunk_key(key_encoding, c))
        os.makedirs(os.path.dirname(file), exist_ok=True)
        with open(file, "wb") as f:
            f.write(data)
    meta = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [len(values)],
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [chunk]}},
        "chunk_key_encoding": key_encoding,
        "fill_value": fill,
        "codecs": codecs,
        "attributes": {},
    }
    meta.update(extra or {})
    write_json(os.path.join(path, "zarr.json"), meta)


def make_fixture():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    write_json(os.path.join(OUT, "zarr.json"),
               {"zarr_format": 3, "node_type": "group", "attributes": {"source": "make_zarr_fixture.py"}})
    i = np.arange(1000, dtype=np.int64)
    write_array(os.path.join(OUT, "train"), (7 * i + 3) % 50000 - 20000, "int32", 128, -1, "little",
                {"name": "default", "configuration": {"separator": "/"}},
                {"cname": "zstd", "clevel": 3, "shuffle": "shuffle", "typesize": 4, "blocksize": 0},
                skip_chunks=(3,), extra={"dimension_names": ["token"], "storage_transformers": [],
                                         "attributes": {"note": "chunk 3 is absent"}})
    i = np.arange(300, dtype=np.int64)
    write_array(os.path.join(OUT, "val"), (7919 * i + 3) % 65536, "uint16", 64, 0, "little",
                {"name": "default", "configuration": {"separator": "."}},
                {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 2, "blocksize": 0})
    i = np.arange(200, dtype=np.uint64)
    write_array(os.path.join(OUT, "ids_u32"), (np.uint64(2654435761) * i + np.uint64(3)) % np.uint64(2**32),
                "uint32", 50, 0, "big", {"name": "v2", "configuration": {"separator": "."}},
                {"cname": "zstd", "clevel": 1, "shuffle": "bitshuffle", "typesize": 4, "blocksize": 0})
    i = np.arange(100, dtype=np.uint64)
    with np.errstate(over="ignore"):  # the multiplication wraps mod 2**64 on purpose
        big = (np.uint64(0x9E3779B97F4A7C15) * i + np.uint64(3)).view(np.int64)
    write_array(os.path.join(OUT, "big_i64"), big, "int64", 128, 7, "little",
                {"name": "default"}, None)


def dump(path, start=0, count=None):
    """Decodes an array with nothing but the spec, blosc and numpy (to cross-check our writer)."""
    with open(os.path.join(path, "zarr.json")) as f:
        meta = json.load(f)
    length = meta["shape"][0]
    chunk = meta["chunk_grid"]["configuration"]["chunk_shape"][0]
    endian = meta["codecs"][0]["configuration"]["endian"]
    np_type = (">" if endian == "big" else "<") + NUMPY_TYPES[meta["data_type"]]
    count = length - start if count is None else count
    out = []
    for c in range(start // chunk, (start + count + chunk - 1) // chunk):
        file = os.path.join(path, chunk_key(meta["chunk_key_encoding"], c))
        if not os.path.exists(file):
            out.append(np.full(chunk, meta["fill_value"], dtype=np_type))
            continue
        with open(file, "rb") as f:
            data = f.read()
        if len(meta["codecs"]) > 1:
            data = blosc.decompress(data)
        out.append(np.frombuffer(data, dtype=np_type))
    values = np.concatenate(out) if out else np.zeros(0, dtype=np_type)
    first = (start // chunk) * chunk
    print(meta["data_type"], "length", length, "chunk", chunk)
    print(" ".join(str(v) for v in values[start - first:start - first + count]))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--dump":
        dump(sys.argv[2], *(int(a) for a in sys.argv[3:5]))
    else:
        make_fixture()
        print("wrote", OUT)
