"""Smoke runs of the benchmark scripts (they print measurements; speed is never asserted)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_script_runs_every_mode_and_prints_ratios():
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'bench.py'), '--models', 'test_fractalbrainnet', '--peers',
         'resnet18', '--modes', 'eager', 'deploy', 'bf16', 'onnx', 'train', '--batch-sizes', '2', '--img-size', '64',
         '--train-img-size', '32', '--train-batch-size', '2', '--repeats', '1', '--threads', '1'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert 'conv roofline' in out
    for case in ('test_fractalbrainnet eager bs2', 'test_fractalbrainnet deploy bs2', 'test_fractalbrainnet bf16 bs2',
                 'test_fractalbrainnet onnx bs2', 'test_fractalbrainnet train bs2@32', 'resnet18 eager bs2'):
        assert case in out, case
    assert '1.00x' in out


STAND_IN_PROGRAM = """
import timm
import timm_fractalbrain


def create_fractal_brain_net(size, num_classes=1000):
    return timm.create_model('fractalbrainnet_' + size, num_classes=num_classes)
"""


def test_bench_script_compares_with_a_program_file_and_prints_the_ceiling(tmp_path):
    # a stand-in for the original program with the same entry point: the comparison code runs, the numbers
    # compare our model with itself
    program = tmp_path / 'program.py'
    program.write_text(STAND_IN_PROGRAM)
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'bench.py'), '--models', 'fractalbrainnet_small', '--peers',
         '--modes', 'eager', 'train', '--batch-sizes', '2', '--img-size', '32', '--train-img-size', '32',
         '--train-batch-size', '2', '--repeats', '1', '--threads', '1', '--seed-program', str(program)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    section = proc.stdout.split('against the original program')[1]
    for label in ('eager    bs2', 'train    bs2', 'ceiling  bs2'):
        assert label in section, label
    assert section.count('ceiling') == 2


def test_bench_script_refuses_a_missing_program_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'bench.py'), '--seed-program', str(tmp_path / 'nope.py')],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'does not exist' in proc.stderr


def test_train_memory_script_reports_both_cases():
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'train_memory.py'), '--models', 'test_fractalbrainnet',
         '--batch-size', '2', '--img-size', '32'], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('test_fractalbrainnet')][0]
    assert line.count('MiB') == 4
