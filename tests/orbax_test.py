"""Official checkpoints through our tools: tests/golden/<case>/orbax is a checkpoint that the
official Checkpointer wrote (tools/official/checkpoint_roundtrip.py) of the model whose initial
leaves official.safetensors holds (init.*). For each case:
  - tools/import_orbax.py reads it: every leaf equals init.*, bitwise;
  - `ttt import` then `ttt export` give the same leaves back, bitwise;
  - tools/export_orbax.py writes that as an orbax checkpoint, which import_orbax.py reads back bitwise.
Needs orbax-checkpoint, numpy and safetensors; prints SKIPPED (CTest counts it as skipped) without.

  python3 tests/orbax_test.py BUILD_DIR SOURCE_DIR
"""

import os
import subprocess
import sys
import tempfile


def main():
    build, source = sys.argv[1], sys.argv[2]
    try:
        import numpy as np
        import orbax.checkpoint  # noqa: F401
        from safetensors.numpy import load_file
    except ImportError as e:
        print(f"SKIPPED: {e.name} is not installed (orbax-checkpoint, numpy and safetensors are needed)")
        return 0
    tools = os.path.join(source, "tools")
    golden = os.path.join(source, "tests", "golden")
    cases = sorted(c for c in os.listdir(golden) if os.path.isdir(os.path.join(golden, c, "orbax")))
    if not cases:
        print(f"SKIPPED: no tests/golden/<case>/orbax under {golden} (tools/official/checkpoint_roundtrip.py writes them)")
        return 0

    def run(*command):
        subprocess.run([str(c) for c in command], check=True, stdout=subprocess.DEVNULL)

    def expect_same(got, want, what):
        assert set(got) == set(want), f"{what}: leaves differ: {sorted(set(got) ^ set(want))}"
        for name, value in want.items():
            assert got[name].dtype == value.dtype and np.array_equal(got[name], value), f"{what}: {name} differs"

    for case in cases:
        want = {k[5:]: v for k, v in load_file(os.path.join(golden, case, "official.safetensors")).items()
                if k.startswith("init.")}
        with tempfile.TemporaryDirectory() as tmp:
            imported, exported = os.path.join(tmp, "imported.safetensors"), os.path.join(tmp, "exported.safetensors")
            run(sys.executable, os.path.join(tools, "import_orbax.py"), os.path.join(golden, case, "orbax"), "--out",
                imported)
            expect_same(load_file(imported), want, f"{case}: import_orbax.py")
            run(os.path.join(build, "ttt"), "import", "--weights", imported, "--config",
                os.path.join(golden, case, "config.yaml"), f"checkpoint.checkpoint_dir={os.path.join(tmp, 'ours')}")
            run(os.path.join(build, "ttt"), "export", "--checkpoint", os.path.join(tmp, "ours"), "--out", exported)
            expect_same(load_file(exported), want, f"{case}: ttt import/export")
            run(sys.executable, os.path.join(tools, "export_orbax.py"), exported, "--out", os.path.join(tmp, "orbax"))
            run(sys.executable, os.path.join(tools, "import_orbax.py"), os.path.join(tmp, "orbax"), "--out", imported)
            expect_same(load_file(imported), want, f"{case}: export_orbax.py then import_orbax.py")
        print(f"{case}: {len(want)} leaves bitwise equal through import_orbax, ttt import/export, export_orbax")
    return 0


if __name__ == "__main__":
    sys.exit(main())
