"""Training-step throughput of the official TTT-E2E code on this machine's first device.

Same configuration as ours (`ttt info +experiment=... > CASE.yaml`), the official dummy data
(random tokens), the official jitted step (loop.train_on_sequence: outer gradient, AdamW
update). Prints one JSON line: seconds per step (mean of --steps after --warmup, each ended with
block_until_ready), tokens/s, the first step's time (compilation included), peak device memory.

  python3 tools/official/bench.py --official .official/e2e --config CASE.yaml --batch 8
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    harness.run_with_official(parse_args(), run)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--name", default="")
    return p.parse_args()


def run(args, official, cfg):
    import jax
    import numpy as np

    cfg.training.global_batch_size = args.batch
    M = official.transformer.MetaModel.MetricType
    model, state = harness.build(official, cfg, cfg.training.model_seed)
    outer_tx, _ = official.optimizers.make_optimizer(cfg.training.optimizer_outer)
    opt_state = outer_tx.init(model.trainable_parameters())
    T = cfg.training.seq_length
    rng = np.random.default_rng(0)
    times, losses = [], []
    for step in range(args.warmup + args.steps):
        # The official dummy dataset: random tokens below 20.
        tokens = rng.integers(0, 20, size=(args.batch, T + 1)).astype(np.int32)
        batch = jax.tree.map(lambda x: x[None], harness.batch_of(official, tokens, cfg.model.bos_token_id))
        jax.block_until_ready(batch)
        start = time.perf_counter()
        state = harness.with_step(model, state, step)
        model, opt_state, loss, metrics = official.loop.train_on_sequence(state, model, opt_state, batch, cfg)
        jax.block_until_ready((model, opt_state, loss, metrics[M.outer_grad_norm]))
        times.append(time.perf_counter() - start)
        losses.append(float(loss))
    timed = times[args.warmup:]
    seconds = sum(timed) / len(timed)
    stats = jax.devices()[0].memory_stats() or {}
    print(json.dumps({
        "benchmark": "official_train_step",
        "name": args.name,
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "train_mode": str(cfg.training.train_mode),
        "batch_size": args.batch,
        "seq_length": T,
        "compute_dtype": cfg.model.compute_dtype,
        "steps": args.steps,
        "seconds_per_step": seconds,
        "step_seconds": timed,
        "first_step_seconds": times[0],
        "tokens_per_second": args.batch * T / seconds,
        "losses": losses,
        "peak_device_memory_mib": stats.get("peak_bytes_in_use", 0) / 2**20,
    }), flush=True)


if __name__ == "__main__":
    main()
