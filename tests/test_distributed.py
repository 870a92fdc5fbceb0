"""Two processes (gloo, CPU) train fractalbrainnet_small under DistributedDataParallel with drop-path on."""
import json
import socket
import subprocess
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_two_processes_drop_path_without_find_unused_parameters(tmp_path):
    out = tmp_path / 'result.json'
    worker = Path(__file__).with_name('ddp_worker.py')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_addr=127.0.0.1',
           f'--master_port={_free_port()}', str(worker), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result['world'] == 2 and result['steps'] == 3
    assert result['moved'] > 1e-4  # the optimizer really stepped
    assert result['max_rank_diff'] == 0.0  # identical parameters on both ranks
