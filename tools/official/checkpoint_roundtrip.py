"""Checkpoint interop against the official code itself, for one configuration:

  1. the official model (seeded) is saved by the official Checkpointer (ttt/infra/checkpoint.py:
     model weights, optimizer state, loader position) into OUT/official;
  2. tools/import_orbax.py reads it; every leaf must equal the official model's, bitwise;
  3. `ttt import` makes it our checkpoint and `ttt export` writes it back out: bitwise again;
  4. tools/export_orbax.py writes that as an orbax checkpoint, and the official Checkpointer loads
     it the way its trainer does with training.load_part=params into a model of another seed:
     every leaf must equal the first model's, bitwise.

OUT/official is what tests/golden/<case>/orbax holds (tests/orbax_test.py). Prints one JSON line.

  JAX_PLATFORMS=cpu python3 tools/official/checkpoint_roundtrip.py --official .official/e2e \
      --config tests/golden/meta-swa/config.yaml --ttt build/ttt --out /tmp/meta-swa
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRAIN_STUBS = ["grain._src", "grain._src.python", "grain._src.python.data_loader", "grain._src.python.dataset",
               "grain._src.python.dataset.dataset"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True)
    p.add_argument("--config", required=True, help="our resolved configuration (ttt info's YAML)")
    p.add_argument("--ttt", required=True, help="our ttt binary")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    harness.run_with_official(p.parse_args(), run, reference_attention=True)


def official_checkpoint_module(official_root):
    """ttt/infra/checkpoint.py, importable without grain: its PyGrain handler derives from a plain
    orbax CheckpointHandler (the real grain's is one too) and the loader types are stand-ins."""
    import importlib

    import orbax.checkpoint as ocp

    harness.STUBBED_MODULES.extend(GRAIN_STUBS)
    harness.install_import_stubs()

    class PyGrainCheckpointHandler(ocp.CheckpointHandler):
        def metadata(self, directory):
            return None

        def finalize(self, directory):
            pass

        def close(self):
            pass

    sys.modules["grain.python"].PyGrainCheckpointHandler = PyGrainCheckpointHandler
    return importlib.import_module("ttt.infra.checkpoint")


class LoaderPosition:
    """What the official Checkpointer saves of its data iterator: the state as bytes."""

    def get_state(self):
        return b'{"position": 0}'


def run(args, official, cfg):
    import jax
    import numpy as np
    from safetensors.numpy import load_file

    out = os.path.abspath(args.out)
    if os.path.exists(out) and os.listdir(out):
        raise SystemExit(f"error: {out} is not empty (every stage writes new checkpoints there)")
    ckpt = official_checkpoint_module(args.official)
    os.makedirs(out, exist_ok=True)

    model, _ = harness.build(official, cfg, args.seed)
    original = harness.named_leaves(model.weights())
    outer_tx, _ = official.optimizers.make_optimizer(cfg.training.optimizer_outer)
    opt_state = outer_tx.init(model.trainable_parameters())

    # 1. The official Checkpointer writes step 3.
    cfg.checkpoint.checkpoint_dir = os.path.join(out, "official")
    saver = ckpt.Checkpointer(cfg, for_saving=True)
    saver.save_checkpoint(3, model, opt_state, LoaderPosition(), is_milestone=True)
    saver.wait_until_finished()
    saver.close()

    def same(a, b, what):
        if set(a) != set(b):
            raise SystemExit(f"{what}: leaves differ: {sorted(set(a) ^ set(b))}")
        for name in a:
            if a[name].dtype != b[name].dtype or a[name].shape != b[name].shape or not np.array_equal(a[name], b[name]):
                raise SystemExit(f"{what}: {name} differs")

    def call(*command):
        subprocess.run([str(c) for c in command], check=True)

    # 2. Our reader.
    imported = os.path.join(out, "imported.safetensors")
    call(sys.executable, os.path.join(TOOLS, "import_orbax.py"), cfg.checkpoint.checkpoint_dir, "--out", imported)
    same(load_file(imported), original, "import_orbax")

    # 3. Our checkpoint and back.
    exported = os.path.join(out, "exported.safetensors")
    call(args.ttt, "import", "--weights", imported, "--config", args.config, "--step", 3,
         f"checkpoint.checkpoint_dir={os.path.join(out, 'ours')}")
    call(args.ttt, "export", "--checkpoint", os.path.join(out, "ours"), "--out", exported)
    same(load_file(exported), original, "ttt import/export")

    # 4. Our writer, read by the official loader as its trainer does for load_part=params.
    call(sys.executable, os.path.join(TOOLS, "export_orbax.py"), exported, "--out", os.path.join(out, "exported"),
         "--step", 7)
    other, _ = harness.build(official, cfg, args.seed + 7)
    before = harness.named_leaves(other.weights())
    changed = sum(not np.array_equal(before[n], original[n]) for n in original)
    cfg.checkpoint.resume_checkpoint_dir = os.path.join(out, "exported")
    loader = ckpt.Checkpointer(cfg, for_saving=False)
    restored = loader.load_checkpoint({"model_weights": other.weights()}, official.config.TrainingConfig.LoadPart.params)
    loader.close()
    loaded, missing = ckpt.unify_dict_with_eqx_module(restored["model_weights"], other)
    if missing:
        raise SystemExit(f"official loader: not found {missing}")
    same(harness.named_leaves(loaded.weights()), original, "official load of export_orbax")
    print(json.dumps({"config": args.config, "leaves": len(original), "leaves_the_other_seed_changed": changed,
                      "jax": jax.__version__, "orbax": __import__("orbax.checkpoint").checkpoint.__version__,
                      "result": "bitwise equal at every stage"}))


if __name__ == "__main__":
    main()
