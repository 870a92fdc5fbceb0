"""Smoke runs of the benchmark scripts (they print measurements; speed is never asserted)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_script_runs_every_mode_and_prints_ratios():
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'bench.py'), '--models', 'test_fractalbrainnet', '--peers',
         'resnet18', '--modes', 'eager', 'deploy', 'onnx', 'train', '--batch-sizes', '2', '--img-size', '64',
         '--train-img-size', '32', '--train-batch-size', '2', '--repeats', '1', '--threads', '1'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert 'conv roofline' in out
    for case in ('test_fractalbrainnet eager bs2', 'test_fractalbrainnet deploy bs2', 'test_fractalbrainnet onnx bs2',
                 'test_fractalbrainnet train bs2@32', 'resnet18 eager bs2'):
        assert case in out, case
    assert '1.00x' in out


def test_train_memory_script_reports_both_cases():
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'train_memory.py'), '--models', 'test_fractalbrainnet',
         '--batch-size', '2', '--img-size', '32'], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('test_fractalbrainnet')][0]
    assert line.count('MiB') == 4
