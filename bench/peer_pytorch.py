#!/usr/bin/env python3
"""A plain PyTorch-eager implementation of ttt's model and losses, to time ours against.

It reads a case file that `bench_train_step --save-case FILE` wrote: the initial weights, a token
batch, the model's settings, and our loss and gradient norm for that first step. It computes the
same step here (the pretrain loss, or the meta loss with second-order gradients through every
inner step), checks the loss and gradient norm against ours, then times whole training steps
(loss, backward, global-norm clip, AdamW). It prints one JSON object.

Written from the method, not from our C++: Python lists of tensors, masked attention matrices
(one T x T matrix per head, or query blocks with --attention blocked, as ttt computes them),
autograd.grad with create_graph for the inner steps. Meta steps keep the whole inner loop's graph
(no recomputation).

    peer_pytorch.py CASE.safetensors [--steps N] [--warmup N] [--threads N] [--attention full|blocked]
"""
import argparse
import json
import math
import resource
import struct
import sys
import time

import torch

SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
                      "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + length + begin:8 + length + end])
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"]).clone()
    return tensors, metadata


class Model:
    """The weights by name and the settings; functions below take the tensors they use."""

    def __init__(self, case, weights, blocked=False):
        self.c = case
        self.blocked = blocked
        self.w = weights
        self.L = case["num_hidden_layers"]
        self.first_suffix = self.L - case["suffix_len"]
        self.H = case["num_attention_heads"]
        self.d = case["hidden_size"] // self.H
        self.compute = DTYPES[case["compute_dtype"]]
        self.window = case["sliding_window_size"] if case["seq_modeling_block"] == "SWA" else 0

    def block(self, i, fast=None):
        """Block i's tensors by short name, with fast weights in place of the stored ones."""
        stored = f"language_model.model.h.blocks.{i}."
        out = {k[len(stored):]: v for k, v in self.w.items() if k.startswith(stored)}
        if self.c["prime"] and i >= self.first_suffix:
            prime = f"language_model.model.h.prime_storage.{i - self.first_suffix}."
            out.update({k[len(prime):]: v for k, v in self.w.items() if k.startswith(prime)})
        for name, tensor in (fast or {}).items():
            for prefix in (stored, f"language_model.model.h.prime_storage.{i - self.first_suffix}."):
                if name.startswith(prefix):
                    out[name[len(prefix):]] = tensor
        return out


def acc_dtype(x):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def per_sequence(weight, x):
    """A [B, ...] fast weight lined up with x [B, ..., D]; a shared weight as it is."""
    if weight.dim() == 1:
        return weight
    return weight.view(weight.shape[0], *([1] * (x.dim() - 2)), weight.shape[-1])


def rms_norm(x, scale, eps):
    xf = x.to(acc_dtype(x))
    normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (normed * per_sequence(scale, x).to(xf.dtype)).to(x.dtype)


def linear(m, x, w):
    return torch.matmul(x.to(m.compute), w.to(m.compute))


def rope_angles(m, positions, dtype):
    inv_freq = m.c["rope_theta"] ** (-torch.arange(0, m.d, 2, dtype=torch.float64) / m.d)
    angles = positions.to(torch.float64).unsqueeze(1) * inv_freq.unsqueeze(0)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rope(x, cos, sin):
    """Interleaved pairs (x[2i], x[2i+1]) of x [B, T, H, d] rotated by the angles of its T positions."""
    B, T, H, d = x.shape
    pairs = x.to(cos.dtype).view(B, T, H, d // 2, 2)
    re, im = pairs[..., 0], pairs[..., 1]
    cos, sin = cos.view(1, T, 1, d // 2), sin.view(1, T, 1, d // 2)
    return torch.stack([re * cos - im * sin, re * sin + im * cos], -1).view(B, T, H, d).to(x.dtype)


def attend(q, k, v, mask):
    """q [B, Tq, H, d], k and v [B, Tk, H, d], mask [Tq, Tk] (True: attend)."""
    scores = torch.matmul(q.transpose(1, 2), k.transpose(1, 2).transpose(-2, -1)) / math.sqrt(q.shape[-1])
    scores = scores.to(acc_dtype(q)).masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, -1).to(v.dtype)
    return torch.matmul(probs, v.transpose(1, 2)).transpose(1, 2)


def qkv(m, b, x):
    B, T, _ = x.shape
    q, k, v = (linear(m, x, b[f"seq_modeling_block.{n}.weight"]).view(B, T, m.H, m.d) for n in ("wq", "wk", "wv"))
    if m.c["qk_norm"]:
        q = rms_norm(q, b["seq_modeling_block.q_norm.weight"], m.c["rms_norm_eps"])
        k = rms_norm(k, b["seq_modeling_block.k_norm.weight"], m.c["rms_norm_eps"])
    return q, k, v


def attention_full(m, b, x, segment):
    """Causal attention over the whole sequence: one T x T masked matrix, or (--attention blocked)
    query blocks of W/4 (at least 64; 1024 without a window) against the keys they can see."""
    B, T, _ = x.shape
    q, k, v = qkv(m, b, x)
    cos, sin = rope_angles(m, torch.arange(T), acc_dtype(q))
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    if m.blocked:
        block = min(max(m.window // 4, 64), T) if m.window > 0 else min(T, 1024)
    else:
        block = T
    outs = []
    for s in range(0, T, block):
        e = min(T, s + block)
        first = max(0, s - m.window + 1) if m.window > 0 else 0
        if segment > 0:
            first = max(first, s // segment * segment)
        i, j = torch.arange(s, e).unsqueeze(1), torch.arange(first, e).unsqueeze(0)
        mask = i >= j
        if m.window > 0:
            mask &= i - j < m.window
        if segment > 0:
            mask &= torch.div(i, segment, rounding_mode="floor") == torch.div(j, segment, rounding_mode="floor")
        outs.append(attend(q[:, s:e], k[:, first:e], v[:, first:e], mask))
    out = torch.cat(outs, 1) if len(outs) > 1 else outs[0]
    return linear(m, out.reshape(B, T, -1), b["seq_modeling_block.wo.weight"])


def attention_cached(m, b, x, cache, start):
    """x [B, n, D] at positions start.. against the cache of the W keys/values before them."""
    B, n, _ = x.shape
    W = cache[0].shape[1]
    q, k, v = qkv(m, b, x)
    keys = torch.cat([cache[0], k.to(cache[0].dtype)], 1)
    values = torch.cat([cache[1], v.to(cache[1].dtype)], 1)
    cos, sin = rope_angles(m, torch.arange(W + n), acc_dtype(q))  # local positions
    q, k_rot = rope(q, cos[W:], sin[W:]), rope(keys, cos, sin)
    qi = torch.arange(start, start + n).unsqueeze(1)
    ki = torch.arange(start - W, start + n).unsqueeze(0)
    mask = (qi >= ki) & (qi - ki < W) & (ki >= 0)
    out = attend(q, k_rot, values.to(q.dtype), mask)
    return linear(m, out.reshape(B, n, -1), b["seq_modeling_block.wo.weight"]), (keys[:, n:], values[:, n:])


def residual(m, h, pre, post, f):
    x = rms_norm(h, pre, m.c["rms_norm_eps"]) if m.c["pre_norm"] else h
    y = f(x)
    if m.c["post_norm"]:
        y = rms_norm(y, post, m.c["rms_norm_eps"])
    return h + y.to(h.dtype)


def swiglu(m, x, b, name):
    gate = torch.nn.functional.silu(linear(m, x, b[f"{name}.w1.weight"]))
    return linear(m, gate * linear(m, x, b[f"{name}.w3.weight"]), b[f"{name}.w2.weight"])


def mlps(m, b, h):
    if "feed_forward_prime.w1.weight" in b:
        h = residual(m, h, b["ffn_prime_norm.weight"], b["ffn_prime_post_norm.weight"],
                     lambda x: swiglu(m, x, b, "feed_forward_prime"))
    return residual(m, h, b["ffn_norm.weight"], b["ffn_post_norm.weight"], lambda x: swiglu(m, x, b, "feed_forward"))


def embed(m, ids):
    return m.w["language_model.model.wte.weight"][ids].to(m.compute)


def head(m, h):
    x = rms_norm(h, m.w["language_model.model.ln_f.weight"], m.c["rms_norm_eps"])
    if m.c["tie_word_embeddings"]:
        return torch.matmul(x.to(m.compute), m.w["language_model.model.wte.weight"].to(m.compute).t())
    return torch.matmul(x.to(m.compute), m.w["language_model.lm_head.weight"].to(m.compute))


def chunk_losses(m, logits, targets, mask):
    """Masked mean NLL of each sequence: logits [B, n, V] -> [B]."""
    logp = torch.log_softmax(logits.to(acc_dtype(logits)), -1)
    nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = mask.to(nll.dtype)
    return (nll * mask).sum(-1) / mask.sum(-1).clamp_min(1e-10)


def pretrain_loss(m, batch):
    ids, targets, mask = batch
    T = ids.shape[1]
    b = min(m.c["mini_batch_size"], T)
    segment = m.c["mini_batch_size"] if m.window == 0 and m.c["mini_batch_size"] < T else 0
    h = embed(m, ids)
    for i in range(m.L):
        blk = m.block(i)
        h = residual(m, h, blk["seq_norm.weight"], blk["seq_post_norm.weight"],
                     lambda x: attention_full(m, blk, x, segment))
        h = mlps(m, blk, h)
    logits = head(m, h)
    B = ids.shape[0]
    per_chunk = chunk_losses(m, logits.view(B * (T // b), b, -1), targets.reshape(-1, b), mask.reshape(-1, b))
    return per_chunk.view(B, T // b).mean(1).mean()


def meta_loss(m, batch):
    """The mean over chunks of each chunk's loss, read with the fast weights the earlier chunks'
    inner SGD steps made; the graph runs through every step."""
    ids, targets, mask = batch
    B, T = ids.shape
    b, C = m.c["mini_batch_size"], T // m.c["mini_batch_size"]
    state_dtype = DTYPES[m.c["state_dtype"]]
    h = embed(m, ids)
    for i in range(m.first_suffix):
        blk = m.block(i)
        h = residual(m, h, blk["seq_norm.weight"], blk["seq_post_norm.weight"], lambda x: attention_full(m, blk, x, 0))
        h = mlps(m, blk, h)
    names = m.c["inner_params"]
    fast = [m.w[n].to(state_dtype).unsqueeze(0).expand(B, *m.w[n].shape) for n in names]
    W = m.c["sliding_window_size"]
    caches = [(torch.zeros(B, W, m.H, m.d, dtype=m.compute), torch.zeros(B, W, m.H, m.d, dtype=m.compute))
              for _ in range(m.c["suffix_len"])]
    losses = []
    for c in range(C):
        x = h[:, c * b:(c + 1) * b]
        for j in range(m.c["suffix_len"]):
            blk = m.block(m.first_suffix + j, dict(zip(names, fast)))
            out = {}

            def attention(y, blk=blk, j=j):
                a, out["cache"] = attention_cached(m, blk, y, caches[j], c * b)
                return a

            x = residual(m, x, blk["seq_norm.weight"], blk["seq_post_norm.weight"], attention)
            caches[j] = out["cache"]
            x = mlps(m, blk, x)
        loss = chunk_losses(m, head(m, x), targets[:, c * b:(c + 1) * b], mask[:, c * b:(c + 1) * b])
        losses.append(loss)
        if c + 1 < C:
            grads = torch.autograd.grad(loss.sum(), fast, create_graph=True)
            if m.c["inner_clip"] > 0:
                norm = sum(g.pow(2).reshape(B, -1).sum(1) for g in grads).sqrt()
                scale = m.c["inner_clip"] / norm.clamp_min(m.c["inner_clip"])
                grads = [g * scale.view(B, *([1] * (g.dim() - 1))).to(g.dtype) for g in grads]
            fast = [f - m.c["inner_lr"] * g for f, g in zip(fast, grads)]
    return torch.stack(losses, 1).mean(1).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attention", choices=("full", "blocked"), default="full",
                        help="full-sequence attention as one T x T masked matrix, or in query blocks as ttt does")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tensors, metadata = load_safetensors(args.case)
    case = json.loads(metadata["case"])
    batch = tuple(tensors.pop(f"batch.{k}") for k in ("input_ids", "targets", "loss_mask"))
    weights = tensors
    trainable = [weights[n].requires_grad_(True) for n in case["trainable"]]
    m = Model(case, weights, blocked=args.attention == "blocked")
    loss_fn = meta_loss if case["train_mode"] == "meta" else pretrain_loss
    optimizer = torch.optim.AdamW(trainable, lr=case["step_lr"], betas=(case["b1"], case["b2"]), eps=1e-8,
                                  weight_decay=case["weight_decay"])
    total, first = 0.0, None
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(m, batch)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(trainable, case["outer_clip"] if case["outer_clip"] > 0 else math.inf)
        optimizer.step()
        dt = time.perf_counter() - t0
        if step == 0:
            first = (loss.item(), norm.item())
        if step >= args.warmup:
            total += dt
    loss0, norm0 = first
    B, T = batch[0].shape
    out = {"benchmark": "peer_pytorch", "attention": args.attention, "train_mode": case["train_mode"], "compute_dtype": case["compute_dtype"],
           "seq_length": T, "batch_size": B, "threads": torch.get_num_threads(), "torch": torch.__version__,
           "steps": args.steps, "seconds_per_step": total / args.steps,
           "tokens_per_second": B * T * args.steps / total,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "loss": loss0, "ours_loss": case["loss"], "loss_relative_difference": abs(loss0 - case["loss"]) / abs(case["loss"]),
           "gradient_norm": norm0, "ours_gradient_norm": case["gradient_norm"],
           "gradient_norm_relative_difference": abs(norm0 - case["gradient_norm"]) / abs(case["gradient_norm"])}
    tolerance = 1e-4 if case["compute_dtype"] == "fp32" else 2e-2
    out["matches_ours"] = out["loss_relative_difference"] < tolerance and out["gradient_norm_relative_difference"] < tolerance
    print(json.dumps(out))
    return 0 if out["matches_ours"] else 1


if __name__ == "__main__":
    sys.exit(main())
