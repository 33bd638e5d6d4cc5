#!/usr/bin/env python3
"""Writes an official weights file (`ttt export`'s output: one safetensors tensor per leaf of the
official pytree) as an orbax checkpoint that the official TTT-E2E code loads.

  ./build/ttt export --checkpoint experiments/<exp>/checkpoints --out weights.safetensors
  python3 tools/export_orbax.py weights.safetensors --out CHECKPOINT_DIR [--step N]

CHECKPOINT_DIR/<step>/model_weights is written as the official Checkpointer writes that item
(orbax CheckpointManager, StandardSave of the model's weight pytree: nested by attribute name).
Like the released checkpoints it holds parameters only, so the official trainer loads it with
training.load_part=params, CHECKPOINT_DIR being the checkpoint directory of the experiment that
training.resume_exp_name names. An existing step is never replaced. Needs orbax-checkpoint (which
brings JAX), numpy and safetensors; runs on the CPU.
"""

import argparse
import os
import sys


def main():
    args = parse_args()
    import jax
    import orbax.checkpoint as ocp
    from safetensors.numpy import load_file

    # numpy leaves, saved as they are (a JAX array would be float32 where JAX's x64 mode is off).
    tree = nest(load_file(args.weights), args.weights)
    directory = os.path.abspath(args.out)
    registry = ocp.DefaultCheckpointHandlerRegistry()
    registry.add("model_weights", ocp.args.StandardSave, ocp.StandardCheckpointHandler)
    registry.add("model_weights", ocp.args.StandardRestore, ocp.StandardCheckpointHandler)
    manager = ocp.CheckpointManager(directory, handler_registry=registry)
    if args.step in manager.all_steps():
        sys.exit(f"error: {directory} already holds step {args.step}")
    manager.save(args.step, args=ocp.args.Composite(model_weights=ocp.args.StandardSave(tree)), force=True)
    manager.wait_until_finished()
    manager.close()
    count = sum(x.size for x in jax.tree.leaves(tree))
    print(f"{args.weights}: {count} parameters -> {os.path.join(directory, str(args.step), 'model_weights')}")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="the official weights file (ttt export --out)")
    p.add_argument("--out", required=True, help="the checkpoint directory to write into")
    p.add_argument("--step", type=int, default=0, help="the step number of the checkpoint (default 0)")
    return p.parse_args()


def nest(flat, source):
    """{'a.b.c': x} -> {'a': {'b': {'c': x}}}: the weight pytree's nesting by attribute name."""
    tree = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                sys.exit(f"error: {source}: {name} lies under another leaf")
        if leaf in node:
            sys.exit(f"error: {source}: {name} names a subtree and a leaf")
        node[leaf] = value
    return tree


if __name__ == "__main__":
    main()
