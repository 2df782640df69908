"""bench/compare_torch.py's BLAS check, without timing anything heavy: which BLAS a process loaded,
what kind it is, when a comparison against it means nothing, and that the script refuses one
before it runs a benchmark.

Usage: /usr/bin/python3 test_compare_torch.py
"""
import importlib.util
import os
import subprocess
import sys
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "compare_torch.py")
spec = importlib.util.spec_from_file_location("compare_torch", SCRIPT)
ct = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ct)

NETLIB = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"
MAPS = f"""7f00-7f10 r-xp 00000000 08:01 1 {NETLIB}
7f10-7f20 r--p 00010000 08:01 1 {NETLIB}
7f20-7f30 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3.11.0
7f30-7f40 r-xp 00000000 08:01 3 /usr/lib/python3/dist-packages/torch/lib/libtorch_cpu.so
7f40-7f50 rw-p 00000000 00:00 0
"""


def exports(table):
    return lambda lib, name: name in table.get(lib, ())


class BlasDetection(unittest.TestCase):
    def test_libraries_from_maps(self):
        self.assertEqual(ct.blas_libraries(MAPS), [NETLIB])  # once, LAPACK and torch itself left out
        self.assertEqual(ct.blas_libraries("7f00-7f10 r-xp 0 08:01 1 /opt/x/libopenblas.so.0\n"), ["/opt/x/libopenblas.so.0"])
        self.assertEqual(ct.blas_libraries(""), [])

    def test_kinds(self):
        none = exports({})
        generic = "BLAS_INFO=generic, LAPACK_INFO=generic"
        self.assertEqual(ct.blas_kind([NETLIB], none, generic), ct.REFERENCE_BLAS)
        # Debian's alternatives give OpenBLAS and BLIS the same file name in their own folders.
        self.assertEqual(ct.blas_kind([OPENBLAS], exports({OPENBLAS: {"openblas_get_config"}}), generic), "OpenBLAS")
        blis = "/usr/lib/x86_64-linux-gnu/blis-pthread/libblas.so.3"
        self.assertEqual(ct.blas_kind([blis], exports({blis: {"bli_info_get_version_str"}}), generic), "BLIS")
        self.assertEqual(ct.blas_kind([], none, "BLAS_INFO=mkl, LAPACK_INFO=mkl"), "MKL")  # pip wheels link it in
        self.assertTrue(ct.blas_kind(["/opt/libsomeblas.so"], none, generic).startswith("unknown (/opt/libsomeblas.so"))
        # A library in a "blas" folder that exports OpenBLAS's symbols is OpenBLAS, not the reference.
        self.assertEqual(ct.blas_kind([NETLIB], exports({NETLIB: {"openblas_get_config"}}), generic), "OpenBLAS")

    def test_verdicts(self):
        ok, why = ct.blas_verdict(ct.REFERENCE_BLAS, 5.3)
        self.assertFalse(ok)
        self.assertIn("netlib reference BLAS", why)
        self.assertIn("5.3 GFLOP/s", why)
        self.assertFalse(ct.blas_verdict(ct.REFERENCE_BLAS, 500.0)[0])  # whatever it measured
        self.assertFalse(ct.blas_verdict("OpenBLAS", 4.0)[0])           # e.g. a misdetected core type
        self.assertFalse(ct.blas_verdict("unknown (x)", ct.SLOW_GEMM_GFLOPS - 0.1)[0])
        self.assertEqual(ct.blas_verdict("OpenBLAS", 150.0), (True, ""))
        self.assertTrue(ct.blas_verdict("unknown (x)", 60.0)[0])

    def test_this_process(self):
        b = ct.torch_blas(1)
        self.assertEqual(set(b), {"libraries", "kind", "gemm_gflops", "meaningful", "reason"})
        self.assertGreater(b["gemm_gflops"], 0)
        self.assertEqual(b["meaningful"], b["reason"] == "")

    def test_refuses_before_benchmarking(self):
        # The moe binary is /bin/false: if the script ran anything, it would fail differently.
        args = [sys.executable, SCRIPT, "--moe", "/bin/false", "--emb_dim", "64", "--hidden_dim", "32",
                "--num_experts", "4", "--top_k", "2", "--tokens", "8", "--seconds", "0.01"]
        here = ct.torch_blas(1)
        p = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if here["meaningful"]:
            self.skipTest(f"this machine's torch uses {here['kind']} at {here['gemm_gflops']:.0f} GFLOP/s: nothing to refuse")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("refusing: ", p.stderr)
        self.assertIn("--allow_slow_blas", p.stderr)
        self.assertNotIn("/bin/false", p.stderr)  # refused before running moe.cpp
        self.assertEqual(p.stdout, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
