"""fractalbrain-timm: runs a script as __main__ with the models registered, and checks its inputs first."""
import subprocess
import sys
import textwrap

import pytest
import timm
import torch
from safetensors.torch import save_file

from timm_fractalbrain.data import write_digits_folder

SCRIPT = textwrap.dedent('''
    import argparse
    import sys
    import timm
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument('--model', default='test_fractalbrainnet')
    parser.add_argument('--exit-code', type=int, default=0)
    args = parser.parse_args()
    model = timm.create_model(args.model, num_classes=3).eval()
    out = model(torch.randn(2, 3, 32, 32))
    print(f'name={__name__} argv0={sys.argv[0].rsplit("/", 1)[-1]} shape={tuple(out.shape)}')
    sys.exit(args.exit_code)
''')


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'timm_fractalbrain.launcher', *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture()
def script(tmp_path):
    path = tmp_path / 'my_script.py'
    path.write_text(SCRIPT)
    return path


def test_script_without_launcher_does_not_know_the_models(script):
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'Unknown model' in proc.stderr


def test_launcher_runs_script_as_main_with_its_arguments_and_exit_code(script):
    proc = _run(str(script), '--model', 'test_fractalbrainnet')
    assert proc.returncode == 0, proc.stderr
    assert 'name=__main__ argv0=my_script.py shape=(2, 3)' in proc.stdout
    assert _run(str(script), '--exit-code', '3').returncode == 3


def test_console_script_is_installed(script):
    proc = subprocess.run(['fractalbrain-timm', str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and 'shape=(2, 3)' in proc.stdout, proc.stderr


def test_missing_script_is_a_clear_error(tmp_path):
    proc = _run(str(tmp_path / 'nope.py'))
    assert proc.returncode == 2 and "script" in proc.stderr and 'not found' in proc.stderr


def test_num_classes_disagreeing_with_dataset_is_refused(script, tmp_path):
    root = write_digits_folder(tmp_path / 'digits', img_size=8, limit=20)
    proc = _run(str(script), '--data-dir', str(root), '--num-classes', '5')
    assert proc.returncode == 2
    assert '--num-classes 5 disagrees with the dataset' in proc.stderr and 'pass --num-classes 10' in proc.stderr


def test_corrupt_checkpoint_is_refused_before_the_script_runs(script, tmp_path):
    bad = tmp_path / 'bad.pth.tar'
    bad.write_bytes(b'not a checkpoint')
    proc = _run(str(script), '--checkpoint', str(bad))
    assert proc.returncode == 2 and 'could not be loaded' in proc.stderr and 'shape=' not in proc.stdout


def test_checkpoint_of_another_variant_lists_the_mismatch(script, tmp_path):
    path = tmp_path / 'small.safetensors'
    save_file(timm.create_model('fractalbrainnet_small', num_classes=10).state_dict(), str(path))
    proc = _run(str(script), '--model', 'fractalbrainnet_medium', '--num-classes', '10', '--checkpoint', str(path))
    assert proc.returncode == 2
    assert 'does not fit' in proc.stderr and 'missing keys' in proc.stderr and 'shape mismatches' in proc.stderr


def test_checkpoint_with_other_class_count_names_num_classes(script, tmp_path):
    path = tmp_path / 'w.pth'
    torch.save({'state_dict': timm.create_model('test_fractalbrainnet', num_classes=10).state_dict()}, str(path))
    proc = _run(str(script), '--model', 'test_fractalbrainnet', '--num-classes', '7', '--checkpoint', str(path))
    assert proc.returncode == 2 and 'head.fc.weight: (10, 16)' in proc.stderr and '--num-classes' in proc.stderr


DDP_SCRIPT = textwrap.dedent('''
    import os, sys
    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    dist.init_process_group('gloo', init_method='tcp://127.0.0.1:' + sys.argv[1], rank=0, world_size=1)
    model = DistributedDataParallel(torch.nn.Linear(4, 2), device_ids=[torch.device('cpu')])
    model(torch.randn(3, 4)).sum().backward()
    print('ddp ok')
    dist.destroy_process_group()
''')


def test_cpu_ddp_with_device_ids_fails_plainly_and_works_under_the_launcher(tmp_path):
    import socket

    path = tmp_path / 'ddp_script.py'
    path.write_text(DDP_SCRIPT)

    def port():
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return str(s.getsockname()[1])

    plain = subprocess.run([sys.executable, str(path), port()], capture_output=True, text=True, timeout=300)
    assert plain.returncode != 0 and 'device_ids' in plain.stderr  # what timm's train.py hits on CPU
    proc = _run(str(path), port())
    assert proc.returncode == 0 and 'ddp ok' in proc.stdout, proc.stderr
