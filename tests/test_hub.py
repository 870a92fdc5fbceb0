"""Hub round trips over real HTTP: a Hub-protocol server on 127.0.0.1 and the real huggingface_hub client.

Every client runs in its own process with HF_ENDPOINT pointing at the server (huggingface_hub reads it at
import), HF_HUB_DISABLE_XET=1 (the Xet upload path cannot work offline) and a fresh HF_HOME cache.
"""
import json
import os
import subprocess
import sys
import textwrap
from argparse import Namespace
from pathlib import Path

import pytest
import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import HubServer  # noqa: E402

MODEL = 'test_fractalbrainnet'


@pytest.fixture(scope='module')
def hub():
    with HubServer() as server:
        yield server


def _env(hub, home, token='hf_test_token', offline=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith('HF_')}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_XET='1', HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY='1')
    if token:
        env['HF_TOKEN'] = token
    if offline:
        env['HF_HUB_OFFLINE'] = '1'
    return env


def _cli(env, *args):
    return subprocess.run([sys.executable, '-m', 'timm_fractalbrain.hub', *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _load_in_new_process(env, repo, x_path, out_path, **kwargs):
    code = textwrap.dedent(f'''
        import torch, timm, timm_fractalbrain
        model = timm.create_model({repo!r}, pretrained=True, **{kwargs!r}).eval()
        with torch.no_grad():
            torch.save(model(torch.load({str(x_path)!r})), {str(out_path)!r})
        print(model.num_classes, model.in_chans, model.pretrained_cfg.get('input_size'))
    ''')
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A train.py-style checkpoint (with its argparse.Namespace of arguments) of a 10-class model."""
    root = tmp_path_factory.mktemp('ckpt')
    torch.manual_seed(0)
    model = timm.create_model(MODEL, num_classes=10).eval()
    args = Namespace(model=MODEL, num_classes=10, img_size=48, input_size=None, mean=(0.5, 0.5, 0.5),
                     std=(0.25, 0.25, 0.25), crop_pct=0.9, interpolation='bilinear', model_kwargs={},
                     dataset='', data_dir='/data/digits')
    path = root / 'last.pth.tar'
    torch.save({'epoch': 3, 'arch': MODEL, 'state_dict': model.state_dict(), 'args': args}, str(path))
    summary = root / 'summary.csv'
    summary.write_text('epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n0,2.1,1.9,61.5,95.0,0.001\n'
                       '1,1.2,0.8,88.25,99.5,0.0005\n')
    x = torch.randn(2, 3, 48, 48)
    torch.save(x, str(root / 'x.pt'))
    with torch.no_grad():
        logits = model(x)
    return dict(model=model, path=path, summary=summary, x_path=root / 'x.pt', logits=logits, root=root)


def _files(hub, repo, rev='main'):
    return hub.state.files_at(repo, rev)


def test_push_uploads_safetensors_config_and_card_then_fresh_process_loads_identical_logits(hub, trained,
                                                                                              tmp_path):
    env = _env(hub, tmp_path / 'home_push')
    proc = _cli(env, 'push', '--model', MODEL, '--checkpoint', str(trained['path']), '--repo-id', 'org/fbn-test',
                '--results', str(trained['summary']), '--label-names', *[str(i) for i in range(10)])
    assert proc.returncode == 0, proc.stderr
    sha, files = _files(hub, 'org/fbn-test')
    assert set(files) == {'model.safetensors', 'config.json', 'README.md'}
    assert files['model.safetensors'][1] is True  # went through LFS batch + PUT
    assert ('POST', '/org/fbn-test.git/info/lfs/objects/batch') in hub.state.requests
    assert ('POST', '/api/validate-yaml') in hub.state.requests

    config = json.loads(files['config.json'][0])
    assert config['architecture'] == MODEL and config['num_classes'] == 10
    assert config['label_names'] == [str(i) for i in range(10)]
    assert config['model_args']['fractal_pattern'] == 'mandelbrot'
    assert not any('drop' in k for k in config['model_args'])
    cfg = config['pretrained_cfg']
    assert cfg['input_size'] == [3, 48, 48] and cfg['mean'] == [0.5] * 3 and cfg['crop_pct'] == 0.9
    card = files['README.md'][0].decode()
    assert card.startswith('---\nlibrary_name: timm\nlicense: apache-2.0\ntags:\n- image-classification\n- timm\n'
                           '- fractalbrainnet')
    usage = card.index('## How to load it')
    assert card.index('import timm_fractalbrain', usage) < card.index('import timm\n', usage)
    assert 'hf-hub:org/fbn-test' in card and 'GMACs' in card and '88.25' in card and 'fractalbrain-export' in card

    out = trained['root'] / 'hub_logits.pt'
    proc = _load_in_new_process(_env(hub, tmp_path / 'home_fresh', token=None), 'hf-hub:org/fbn-test',
                                trained['x_path'], out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ['10', '3']
    torch.testing.assert_close(torch.load(str(out)), trained['logits'], rtol=0, atol=0)

    # offline reload from the cache of that process
    proc = _load_in_new_process(_env(hub, tmp_path / 'home_fresh', token=None, offline=True),
                                'hf-hub:org/fbn-test', trained['x_path'], out)
    assert proc.returncode == 0, proc.stderr
    torch.testing.assert_close(torch.load(str(out)), trained['logits'], rtol=0, atol=0)


def test_second_push_makes_a_new_commit_and_branches_work(hub, trained, tmp_path):
    env = _env(hub, tmp_path / 'home')
    assert _cli(env, 'push', '--model', MODEL, '--checkpoint', str(trained['path']), '--repo-id',
                'org/fbn-two').returncode == 0
    first, _ = _files(hub, 'org/fbn-two')
    proc = _cli(env, 'push', '--model', MODEL, '--checkpoint', str(trained['path']), '--repo-id', 'org/fbn-two',
                '--commit-message', 'Second upload', '--results', str(trained['summary']))
    assert proc.returncode == 0, proc.stderr
    second, files = _files(hub, 'org/fbn-two')
    assert second != first and second in proc.stdout
    proc = _cli(env, 'push', '--model', MODEL, '--checkpoint', str(trained['path']), '--repo-id', 'org/fbn-two',
                '--revision', 'dev')
    assert proc.returncode == 0, proc.stderr
    assert _files(hub, 'org/fbn-two', 'dev')[0] not in (first, second)
    assert _files(hub, 'org/fbn-two')[0] == second  # main untouched

    proc = _cli(_env(hub, tmp_path / 'pull'), 'pull', 'org/fbn-two', '--revision', 'dev')
    assert proc.returncode == 0, proc.stderr
    assert f'org/fbn-two@dev: weights load into {MODEL}' in proc.stdout and 'num_classes: 10' in proc.stdout


def test_pull_with_other_class_count_and_one_channel(hub, trained, tmp_path):
    env = _env(hub, tmp_path / 'home')
    assert _cli(env, 'push', '--model', MODEL, '--checkpoint', str(trained['path']), '--repo-id',
                'org/fbn-adapt').returncode == 0
    proc = _cli(_env(hub, tmp_path / 'pull'), 'pull', 'org/fbn-adapt', '--num-classes', '3', '--in-chans', '1')
    assert proc.returncode == 0, proc.stderr
    assert 'num_classes: 3' in proc.stdout and 'in_chans: 1' in proc.stdout
    out = trained['root'] / 'adapted.pt'
    x1 = trained['root'] / 'x1.pt'
    torch.save(torch.randn(1, 1, 48, 48), str(x1))
    proc = _load_in_new_process(_env(hub, tmp_path / 'pull'), 'hf-hub:org/fbn-adapt', x1, out, num_classes=3,
                                in_chans=1)
    assert proc.returncode == 0, proc.stderr
    assert torch.load(str(out)).shape == (1, 3)


def test_checkpoint_of_another_variant_is_refused_before_upload(hub, tmp_path):
    ckpt = tmp_path / 'small.pth'
    torch.save(timm.create_model('fractalbrainnet_small', num_classes=10).state_dict(), str(ckpt))
    before = len(hub.state.requests)
    proc = _cli(_env(hub, tmp_path / 'h'), 'push', '--model', MODEL, '--checkpoint', str(ckpt), '--repo-id',
                'org/refused')
    assert proc.returncode == 2 and 'does not fit' in proc.stderr and 'shape mismatches' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert len(hub.state.requests) == before and 'org/refused' not in hub.state.repos


def test_invalid_repo_id_and_missing_token_are_clear_errors(hub, trained, tmp_path):
    proc = _cli(_env(hub, tmp_path / 'h'), 'push', '--model', MODEL, '--checkpoint', str(trained['path']),
                '--repo-id', 'not a/valid//id')
    assert proc.returncode == 2 and 'Invalid repo id' in proc.stderr
    proc = _cli(_env(hub, tmp_path / 'empty_home', token=None), 'push', '--model', MODEL, '--checkpoint',
                str(trained['path']), '--repo-id', 'org/no-token')
    assert proc.returncode == 2 and 'No Hugging Face token' in proc.stderr
    assert 'org/no-token' not in hub.state.repos


def test_unregistered_architecture_says_to_import_the_plugin(hub, tmp_path):
    from huggingface_hub import HfApi

    code = textwrap.dedent('''
        import json, sys
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo('org/alien', exist_ok=True)
        api.upload_file(path_or_fileobj=json.dumps({'architecture': 'alien_net_b0', 'num_classes': 2}).encode(),
                        path_in_repo='config.json', repo_id='org/alien')
    ''')
    env = _env(hub, tmp_path / 'h')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = _cli(_env(hub, tmp_path / 'p'), 'pull', 'org/alien')
    assert proc.returncode == 2 and "'alien_net_b0'" in proc.stderr and 'import the plugin' in proc.stderr
    del HfApi


def test_truncated_safetensors_download_is_a_clear_error(hub, trained, tmp_path):
    env = _env(hub, tmp_path / 'h')
    assert _cli(env, 'push', '--model', MODEL, '--checkpoint', str(trained['path']), '--repo-id',
                'org/broken').returncode == 0
    hub.state.corrupt('org/broken', 'model.safetensors', keep=200)
    proc = _cli(_env(hub, tmp_path / 'fresh'), 'pull', 'org/broken')
    assert proc.returncode == 2 and 'do not load' in proc.stderr and 'Traceback' not in proc.stderr
