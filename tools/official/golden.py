"""Golden numbers from the official TTT-E2E code for one configuration (tests/golden/README.md).

Builds the official model from our resolved configuration (`ttt info ... > CASE.yaml`), feeds it a
seeded token batch and records, in OUT/official.safetensors and OUT/official.json:
  - init.<name>: every parameter as the official code initialises it (stacked layer axes);
  - batch.input_ids / batch.target_tokens / batch.loss_masks [B, T];
  - chunk_loss [B, chunks] (the inner losses of meta training, the window losses of pretraining)
    and token_nll [B, T] at outer step 0;
  - grad.<name>: the gradient of the outer loss (mean over the batch) for every parameter;
  - step1.<name>, step2.<name>: the parameters after one and two official training steps
    (loop.train_on_sequence: AdamW with clipping, the inner learning-rate warmup by step).
The JSON holds the scalars: outer loss, the loss and gradient norm of each step, versions.

  JAX_PLATFORMS=cpu python3 tools/official/golden.py --official .official/e2e \
      --config CASE.yaml --out tests/golden/CASE [--x64]
"""

import argparse
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    harness.run_with_official(parse_args(), run, reference_attention=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="checkout of test-time-training/e2e")
    p.add_argument("--config", required=True, help="our resolved configuration (ttt info's YAML)")
    p.add_argument("--out", required=True)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="model seed; the token batch uses seed + 1")
    p.add_argument("--x64", action="store_true", help="parameters, compute and state in float64")
    return p.parse_args()


def run(args, official, cfg):
    import equinox as eqx
    import jax
    import numpy as np
    from safetensors.numpy import save_file

    if args.x64:
        cfg.model.param_dtype = cfg.model.compute_dtype = cfg.model.state_dtype = "fp64"
    MetaModel = official.transformer.MetaModel
    M = MetaModel.MetricType

    model, state = harness.build(official, cfg, args.seed)
    T = cfg.training.seq_length
    vocab = cfg.model.vocab_size
    bos = cfg.model.bos_token_id
    rng = np.random.default_rng(args.seed + 1)
    tokens = rng.integers(0, min(vocab, bos), size=(args.batch, T + 1)).astype(np.int32)
    tokens[:, 0] = bos
    tokens[0, T // 2] = bos  # a document boundary inside the sequence: that target is masked
    batch = harness.batch_of(official, tokens, bos)

    tensors = {}
    for name, value in harness.named_leaves(model.weights()).items():
        tensors["init." + name] = value
    tensors["batch.input_ids"] = tokens[:, :-1].copy()
    tensors["batch.target_tokens"] = tokens[:, 1:].copy()
    tensors["batch.loss_masks"] = (tokens[:, 1:] != bos).astype(np.int32)

    state = harness.with_step(model, state, 0)  # equinox State: each set() retires the old one

    def outer_loss(m, b):
        losses, metrics = jax.vmap(lambda s: MetaModel.loss_for_sequence(m, s, state))(b)
        return losses.mean(), metrics

    (loss, metrics), grads = eqx.filter_jit(eqx.filter_value_and_grad(outer_loss, has_aux=True))(model, batch)
    tensors["chunk_loss"] = np.asarray(metrics[M.loss])
    tensors["token_nll"] = np.asarray(metrics[M.token_nll_loss])
    for name, value in harness.named_leaves(grads).items():
        tensors["grad." + name] = value

    outer_tx, _ = official.optimizers.make_optimizer(cfg.training.optimizer_outer)
    opt_state = outer_tx.init(model.trainable_parameters())
    dp_batch = jax.tree.map(lambda x: x[None], batch)
    steps = []
    for step in range(2):
        state = harness.with_step(model, state, step)
        model, opt_state, step_loss, step_metrics = official.loop.train_on_sequence(state, model, opt_state, dp_batch, cfg)
        steps.append({"loss": float(step_loss), "grad_norm": float(step_metrics[M.outer_grad_norm])})
        for name, value in harness.named_leaves(model.weights()).items():
            tensors[f"step{step + 1}.{name}"] = value

    os.makedirs(args.out, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, os.path.join(args.out, "official.safetensors"))
    commit = harness.official_commit(args.official)
    info = {
        "source": "test-time-training/e2e",
        "commit": commit,
        "generator": "tools/official/golden.py",
        "jax": jax.__version__,
        "equinox": eqx.__version__,
        "platform": f"{jax.default_backend()} ({platform.machine()})",
        "x64": args.x64,
        "attention_kernel": "XLA reference (the official cudnn argument dropped off GPU)",
        "dtype": "float64" if args.x64 else "float32",
        "model_seed": args.seed,
        "batch_seed": args.seed + 1,
        "batch": args.batch,
        "train_mode": str(cfg.training.train_mode),
        "outer_loss": float(loss),
        "steps": steps,
    }
    with open(os.path.join(args.out, "official.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: info[k] for k in ("train_mode", "dtype", "outer_loss", "steps")}))


if __name__ == "__main__":
    main()
