"""fractalbrain-viz on a bundled photo: the pictures exist, are not blank, and the numbers match the model."""
import json
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from timm_fractalbrain.viz import main


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp('img') / 'chelsea.png'
    Image.fromarray(data.chelsea()).save(path)
    return path


def _not_blank(path):
    pixels = np.asarray(Image.open(path).convert('L'), dtype=np.float32)
    return pixels.shape[0] > 100 and pixels.std() > 5


def test_viz_writes_pictures_and_analysis_matching_the_model(photo, tmp_path):
    out = tmp_path / 'viz'
    assert main(['--model', 'fractalbrainnet_small.digits_32', '--pretrained', '--image', str(photo),
                 '--out', str(out)]) == 0
    for name in ('patterns.png', 'stages.png', 'gates.png'):
        assert _not_blank(out / name), name
    analysis = json.loads((out / 'analysis.json').read_text())

    model = timm.create_model('fractalbrainnet_small.digits_32', pretrained=True).eval()
    x = create_transform(**resolve_data_config(model=model))(Image.open(photo).convert('RGB')).unsqueeze(0)
    expected = model.analyze_fractal_patterns(x)
    assert analysis['pattern_complexity'] == pytest.approx(expected['pattern_complexity'], rel=1e-6)
    assert analysis['hierarchical_organization']['correlation'] == pytest.approx(
        expected['hierarchical_organization']['correlation'], abs=1e-6)
    assert analysis['stage_map_sizes'] == [list(m.shape[-2:]) for m in expected['stage_maps']]
    joins = analysis['join_mean_deep_weight']
    assert len(joins) == 4 and all(0 < v < 1 for v in joins.values())  # levels 2 and 3: 1 + 3 joins
    with torch.no_grad():
        assert analysis['prediction']['index'] == int(model(x).argmax())


def test_curves_plot_from_train_summaries(tmp_path):
    for name, accs in (('a', [10, 50, 90]), ('b', [20, 60, 95])):
        rows = ['epoch,train_loss,eval_loss,eval_top1,eval_top5,lr']
        rows += [f'{i},{2 - i * 0.5},{1.5 - i * 0.4},{a},{a},0.001' for i, a in enumerate(accs)]
        (tmp_path / f'{name}.csv').write_text('\n'.join(rows) + '\n')
    out = tmp_path / 'curves.png'
    assert main(['curves', str(tmp_path / 'a.csv'), str(tmp_path / 'b.csv'), '--labels', 'A', 'B',
                 '--out', str(out)]) == 0
    assert _not_blank(out)


@pytest.mark.parametrize('case,message', [
    ('missing', 'does not exist'),
    ('unreadable', 'cannot be read as an image'),
    ('model', 'Unknown model'),
    ('outdir', 'Cannot create output directory'),
])
def test_bad_input_exits_2_without_traceback(case, message, photo, tmp_path):
    image, model, out = str(photo), 'fractalbrainnet_small', str(tmp_path / 'o')
    if case == 'missing':
        image = str(tmp_path / 'nope.png')
    elif case == 'unreadable':
        (tmp_path / 'bad.png').write_bytes(b'not an image')
        image = str(tmp_path / 'bad.png')
    elif case == 'model':
        model = 'resnet18'
    else:
        (tmp_path / 'file').write_text('x')
        out = str(tmp_path / 'file' / 'sub')
    proc = subprocess.run([sys.executable, '-m', 'timm_fractalbrain.viz', '--model', model, '--image', image,
                           '--out', out], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and message in proc.stderr and 'Traceback' not in proc.stderr
