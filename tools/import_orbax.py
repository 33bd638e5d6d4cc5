#!/usr/bin/env python3
"""Reads the model weights of an official TTT-E2E checkpoint (orbax) into one safetensors file of
the official pytree's leaves, which `ttt import` turns into a checkpoint of ours.

  python3 tools/import_orbax.py CHECKPOINT --out weights.safetensors [--step N]
  ./build/ttt import --weights weights.safetensors +experiment=125m/pretrain/pretrain-125m-e2e

CHECKPOINT is an official experiment's checkpoint directory (numbered step directories, as its
orbax CheckpointManager writes them; the latest step unless --step), one step directory, or the
step's model_weights item; a local path (copy a gs:// checkpoint down first). Only the
parameters are read: optimizer state and data-loader position, where present, are ignored.

Leaves are named by their pytree path with dots (language_model.model.h.blocks.<name>, stacked
over blocks; docs/interop.md), keep their dtype (bfloat16 is widened to float32, exactly, since
numpy has no bfloat16 of its own) and are not otherwise changed: `ttt import` checks every shape
against the configuration. Needs orbax-checkpoint (which brings JAX), numpy and safetensors;
runs on the CPU.
"""

import argparse
import os
import sys


def main():
    args = parse_args()
    item = model_weights_item(args.checkpoint, args.step)
    leaves = flatten(restore_as_numpy(item))
    if not leaves:
        sys.exit(f"error: {item} holds no arrays")
    write_weights(leaves, args.out, source=item)
    total = sum(v.size for v in leaves.values())
    print(f"{item}: {len(leaves)} leaves, {total} parameters -> {args.out}")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="checkpoint directory, step directory or model_weights item")
    p.add_argument("--step", type=int, help="the step to read (default: the latest)")
    p.add_argument("--out", required=True, help="the safetensors file to write")
    return p.parse_args()


def model_weights_item(path, step):
    """The model_weights item directory that `path` (and `step`) name; exits with one line if none."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        sys.exit(f"error: {path} is not a directory")
    if os.path.basename(path) == "model_weights":
        return path
    if os.path.isdir(os.path.join(path, "model_weights")):
        if step is not None:
            sys.exit(f"error: {path} is one step's directory; --step applies to a checkpoint directory")
        return os.path.join(path, "model_weights")
    steps = sorted(int(d) for d in os.listdir(path) if d.isdigit() and os.path.isdir(os.path.join(path, d, "model_weights")))
    if not steps:
        sys.exit(f"error: {path} holds no orbax checkpoint (no <step>/model_weights)")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        sys.exit(f"error: {path} has no step {step} (steps: {', '.join(map(str, steps))})")
    return os.path.join(path, str(step), "model_weights")


def restore_as_numpy(item):
    """The saved pytree with numpy leaves, whatever devices and sharding it was saved from."""
    import jax
    import numpy as np
    import orbax.checkpoint as ocp

    checkpointer = ocp.PyTreeCheckpointer()
    metadata = checkpointer.metadata(item)
    # Newer orbax wraps the tree's metadata (StepMetadata.item_metadata, TreeMetadata.tree).
    tree = getattr(metadata, "item_metadata", metadata)
    tree = getattr(tree, "tree", tree)

    def is_leaf(x):
        return hasattr(x, "shape") and hasattr(x, "dtype")

    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree, is_leaf=is_leaf)
    return checkpointer.restore(item, args=ocp.args.PyTreeRestore(restore_args=restore_args))


def flatten(tree, prefix=""):
    """{'a.b.c': array} for the array leaves of nested dicts / lists; empty nodes are skipped."""
    import numpy as np

    if tree is None:
        return {}
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return {prefix: np.asarray(tree)}
    out = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def write_weights(leaves, out, source):
    import numpy as np
    from safetensors.numpy import save_file

    tensors = {}
    for name, value in leaves.items():
        if value.dtype.name == "bfloat16":
            value = value.astype(np.float32)
        if value.dtype.kind != "f":
            sys.exit(f"error: {source}: leaf {name} is {value.dtype}, not floating-point")
        tensors[name] = np.ascontiguousarray(value)
    partial = out + ".partial"
    save_file(tensors, partial, metadata={"format": "ttt-e2e official layout", "source": source})
    os.replace(partial, out)


if __name__ == "__main__":
    main()
