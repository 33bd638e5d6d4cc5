"""Runs the official TTT-E2E model code (test-time-training/e2e, JAX) outside its launcher.

The official package imports Hydra, OmegaConf, grain, zarr and W&B at module level, for its
launcher, data loading and logging. None of those is needed to build the model, compute its
losses and gradients and take optimizer steps, and the machines we measure on do not have them:
`install_import_stubs` puts inert stand-ins for them in sys.modules before the package is
imported. The configuration comes from our own `ttt info` (the same experiment file resolved by
our loader, printed as YAML with the official field names), so both implementations read one
configuration.

This file is ours; the official code is never copied into the repository. Point --official at a
checkout of it kept in an ignored folder (.official/ is ignored).
"""

import dataclasses
import importlib
import sys
import types

STUBBED_MODULES = [
    "hydra", "hydra.core", "hydra.core.config_store", "hydra.core.hydra_config",
    "omegaconf", "grain", "grain.python", "zarr", "zarr.codecs", "zarr.storage", "wandb",
]


class _Inert:
    """Accepts any construction, call or attribute access (the launcher's and loggers' APIs)."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __getattr__(self, name):
        return _Inert()


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        # A class, so that official classes may derive from it (grain.RandomAccessDataSource).
        return type(name, (_Inert,), {})


def install_import_stubs():
    for name in STUBBED_MODULES:
        if name not in sys.modules:
            sys.modules[name] = _StubModule(name)
    for name in STUBBED_MODULES:  # `import grain.python as grain` reads the parent's attribute
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, sys.modules[name])
    sys.modules["omegaconf"].MISSING = "???"


def import_official(root):
    """Imports the official `ttt` package from the checkout at `root`."""
    install_import_stubs()
    sys.path.insert(0, str(root))
    mods = {}
    for name in ["ttt.config", "ttt.model.data", "ttt.model.transformer", "ttt.model.loop", "ttt.optimizers"]:
        mods[name.split(".")[-1]] = importlib.import_module(name)
    return types.SimpleNamespace(**mods)


def use_reference_attention_kernel():
    """The official attention names implementation="cudnn" for prefix blocks and force_flash, which
    needs a GPU and 16-bit inputs. Golden numbers are computed in float32/64 on the CPU, so that
    argument is dropped there: JAX's XLA implementation computes the same causal, sliding-window
    attention."""
    import jax

    fused = jax.nn.dot_product_attention

    def dot_product_attention(*args, implementation=None, **kwargs):
        query = args[0] if args else kwargs["query"]
        if implementation == "cudnn" and (jax.default_backend() != "gpu" or query.dtype not in (jax.numpy.bfloat16, jax.numpy.float16)):
            implementation = None
        return fused(*args, implementation=implementation, **kwargs)

    jax.nn.dot_product_attention = dot_product_attention


def _fill(dataclass_type, values):
    """An instance of `dataclass_type` with the fields that `values` names (others keep defaults)."""
    fields = {f.name: f for f in dataclasses.fields(dataclass_type)}
    obj = dataclass_type()
    for key, value in values.items():
        if key not in fields:
            continue
        # YAML 1.1 reads 1e-06 (no dot) as a string.
        if isinstance(value, str) and (fields[key].type is float or isinstance(getattr(obj, key), float)):
            value = float(value)
        setattr(obj, key, value)
    return obj


def official_config(official, resolved):
    """The official Config for our resolved configuration (a dict read from `ttt info`'s YAML)."""
    c = official.config
    training = dict(resolved["training"])
    outer = training.pop("optimizer_outer")
    inner = training.pop("optimizer_inner")
    optimizer_type = {"adamw": c.AdamWOptimizerConfig, "sgd": c.SGDOptimizerConfig}
    cfg = c.Config()
    cfg.training = _fill(c.TrainingConfig, training)
    cfg.training.optimizer_outer = _fill(optimizer_type[outer["optimizer_type"]], outer)
    cfg.training.optimizer_inner = _fill(optimizer_type[inner["optimizer_type"]], inner)
    cfg.training.log_wandb = False
    # The config is a static argument of the official jitted step, so it must hash: tuples.
    cfg.training.spec_outer = tuple(cfg.training.spec_outer)
    cfg.training.spec_inner = tuple(cfg.training.spec_inner)
    cfg.model = _fill(c.ModelConfig, resolved["model"])
    # train.py sets this before building the model: the RoPE table covers the training length.
    cfg.model.seq_len = cfg.training.seq_length
    cfg.backend = _fill(c.JaxDistributedConfig, {k: v for k, v in resolved["backend"].items() if k != "backend"})
    cfg.backend.distributed = False
    return cfg


def mesh_context(official, cfg):
    """The device mesh train.py runs under (data x state axes): its attention constrains shardings."""
    import jax

    # ModelSharding's own make_mesh call uses keywords that newer JAX renamed: the same 1 x 1 mesh.
    axis_type = getattr(getattr(jax.sharding, "AxisType", None), "Auto", None)
    extra = {"axis_types": (axis_type, axis_type)} if axis_type is not None else {}
    mesh = jax.make_mesh((len(jax.devices()), 1), ("data", "state"), **extra)
    return jax.set_mesh(mesh) if hasattr(jax, "set_mesh") else mesh


def read_resolved(path):
    import yaml

    with open(path) as f:
        return yaml.safe_load(f)


def build(official, cfg, seed):
    """The official model and its state, as train.py creates them (one device, no sharding)."""
    import equinox as eqx
    import jax

    key = jax.random.PRNGKey(seed)
    return eqx.nn.make_with_state(official.transformer.MetaModel)(cfg, key=key)


def batch_of(official, tokens, bos_token_id):
    """The official Batch of token rows [B, T+1]: inputs, next-token targets, BOS targets masked."""
    import jax.numpy as jnp

    return official.data.Batch(
        input_ids=jnp.asarray(tokens[:, :-1]),
        target_tokens=jnp.asarray(tokens[:, 1:]),
        loss_masks=jnp.asarray(tokens[:, 1:] != bos_token_id),
    )


def with_step(model, state, step):
    import jax.numpy as jnp

    return state.set(model.step_index, jnp.array(step, dtype=jnp.int32))


def named_leaves(tree):
    """{'language_model.model.wte.weight': array, ...} for every array leaf of an Equinox pytree."""
    import jax
    import numpy as np

    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if leaf is None or not hasattr(leaf, "shape"):
            continue
        name = jax.tree_util.keystr(path).lstrip(".")
        out[name] = np.asarray(leaf)
    return out


def run_with_official(args, run, reference_attention=False):
    """Imports the official code from args.official, builds its Config from args.config and calls
    run(args, official, cfg) under the one-device mesh. float64 (args.x64) is switched on before
    the official code is imported; `reference_attention` swaps the cuDNN-only kernel (above)."""
    import jax

    if getattr(args, "x64", False):
        jax.config.update("jax_enable_x64", True)
    official = import_official(args.official)
    if reference_attention:
        use_reference_attention_kernel()
    cfg = official_config(official, read_resolved(args.config))
    with mesh_context(official, cfg):
        run(args, official, cfg)


def official_commit(root):
    """The checkout's commit: a COMMIT file (an exported tree), else git's HEAD, else 'unknown'."""
    import os
    import subprocess

    commit_file = os.path.join(root, "COMMIT")
    if os.path.exists(commit_file):
        return open(commit_file).read().strip()
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
