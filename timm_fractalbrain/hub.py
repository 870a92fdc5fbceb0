"""Publish FractalBrainNet weights to the Hugging Face Hub as safetensors, and pull them back through timm.

    fractalbrain-hub push --model NAME --checkpoint PATH --repo-id ORG/NAME [--num-classes N] [--use-ema]
                          [--private] [--revision BRANCH] [--commit-message MSG] [--results summary.csv]
                          [--label-names A B ...]
    fractalbrain-hub pull ORG/NAME [--revision R] [--num-classes N] [--in-chans C]

push checks the checkpoint (a train.py `.pth.tar`, a state_dict or a `.safetensors` file, read without executing
code) strictly against the architecture before anything is uploaded, then uploads `model.safetensors`, a timm
`config.json` (architecture, num_classes, label_names, pretrained_cfg, model_args) and a model card `README.md`
in one commit. The token comes from HF_TOKEN or the saved login, the endpoint from HF_ENDPOINT.

pull downloads a repo through timm's own `hf-hub:` loading, verifies that the weights load into the declared
architecture, and prints the card's key facts. The normal path for users stays
`timm.create_model('hf-hub:ORG/NAME', pretrained=True)` after `import timm_fractalbrain`.
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import timm
import torch

from timm_fractalbrain.checkpoint import (
    CheckpointError,
    check_state_dict,
    load_checkpoint_file,
    shape_kwargs_from_state,
    state_dict_from_checkpoint,
)

__all__ = ['build_checked_model', 'model_card', 'push', 'pull', 'main']


class HubError(Exception):
    """An expected mistake (bad repo id, checkpoint, token, download): reported without a traceback, exit 2."""


def _validate_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HubError(f'Invalid repo id {repo_id!r}: {e}') from None
    if repo_id.count('/') != 1:
        raise HubError(f'Invalid repo id {repo_id!r}: use the form ORG/NAME (or USER/NAME).')


def _arg(ns: Any, name: str, default=None):
    return getattr(ns, name, default) if ns is not None else default


def build_checked_model(
        model_name: str,
        checkpoint_path: str,
        num_classes: Optional[int] = None,
        use_ema: bool = False,
) -> Dict[str, Any]:
    """Load a checkpoint, build `model_name` to match it, and check the weights strictly.

    Returns dict(model=..., model_args=..., data_config=..., train_args=...). Raises HubError when the weights do
    not fit (listing missing / unexpected keys and shape mismatches).
    """
    arch = model_name.split('.')[0]
    if arch not in timm.list_models('*fractalbrainnet*'):
        raise HubError(f'Unknown model {model_name!r}; FractalBrainNet models are: '
                       f'{", ".join(timm.list_models("*fractalbrainnet*"))}.')
    try:
        checkpoint = load_checkpoint_file(checkpoint_path)
        state = state_dict_from_checkpoint(checkpoint, use_ema=use_ema)
    except CheckpointError as e:
        raise HubError(str(e)) from None
    train_args = checkpoint.get('args') if isinstance(checkpoint.get('args'), argparse.Namespace) else None
    implied = shape_kwargs_from_state(state)
    if num_classes is None:
        num_classes = implied.get('num_classes', _arg(train_args, 'num_classes'))
    model_args: Dict[str, Any] = {}
    if num_classes is not None:
        model_args['num_classes'] = int(num_classes)
    if 'in_chans' in implied:
        model_args['in_chans'] = implied['in_chans']
    pattern = (_arg(train_args, 'model_kwargs') or {}).get('fractal_pattern')
    if pattern:
        model_args['fractal_pattern'] = str(pattern)
    model = timm.create_model(arch, **model_args)
    try:
        check_state_dict(model, state, what=f'checkpoint {checkpoint_path}')
    except CheckpointError as e:
        raise HubError(str(e)) from None
    model.load_state_dict(state)
    model_args['fractal_pattern'] = model.fractal_pattern.value

    data_config: Dict[str, Any] = {}
    img_size = _arg(train_args, 'img_size')
    input_size = _arg(train_args, 'input_size')
    if input_size:
        data_config['input_size'] = tuple(input_size)
    elif img_size:
        data_config['input_size'] = (model.in_chans, int(img_size), int(img_size))
    for key in ('mean', 'std', 'crop_pct', 'interpolation'):
        value = _arg(train_args, key)
        if value:
            data_config[key] = tuple(value) if isinstance(value, (list, tuple)) else value
    return dict(model=model.eval(), model_args=model_args, data_config=data_config, train_args=train_args)


def _read_results(path: Optional[str]) -> Optional[Dict[str, Any]]:
    from timm_fractalbrain.utils import read_train_summary

    if not path:
        return None
    try:
        rows = read_train_summary(path, 'eval_top1')
    except ValueError as e:
        raise HubError(str(e)) from None
    best = max(rows, key=lambda r: float(r['eval_top1']))
    return dict(epochs=len(rows), last=rows[-1], best=best)


def model_card(repo_id: str, model: torch.nn.Module, results: Optional[Dict[str, Any]],
               train_args: Optional[argparse.Namespace], license_id: str = 'apache-2.0') -> str:
    """The README.md model card: front matter for the Hub, then usage, size, results and export."""
    from timm_fractalbrain.utils import params_and_gmacs

    arch = model.pretrained_cfg['architecture']
    cfg = model.pretrained_cfg
    img = int(cfg['input_size'][-1])
    params, gmacs = params_and_gmacs(arch, img_size=img, num_classes=model.num_classes, in_chans=model.in_chans)
    dataset = _arg(train_args, 'dataset') or ''
    data_dir = _arg(train_args, 'data_dir') or ''
    front = ['---', 'library_name: timm', f'license: {license_id}',
             'tags:', '- image-classification', '- timm', '- fractalbrainnet', 'pipeline_tag: image-classification']
    if results:
        top1 = float(results['last']['eval_top1'])
        name = Path(data_dir).name or dataset or 'validation split'
        front += ['model-index:', f'- name: {repo_id.split("/")[-1]}', '  results:', '  - task:',
                  '      type: image-classification', '    dataset:', f'      name: {name}',
                  f'      type: {name}', '    metrics:', '    - type: accuracy', f'      value: {top1:.2f}',
                  '      name: top-1 accuracy']
    front.append('---')
    lines = front + [
        f'# {repo_id.split("/")[-1]}',
        '',
        f'A `{arch}` image classifier (FractalBrainNet: FractalNet expansion rule with fractal masks, brain-wave '
        'band paths, multi-scale processing, learned joins, global attention) for timm.',
        '',
        '## How to load it',
        '',
        '```python',
        'import timm_fractalbrain  # registers the FractalBrainNet architectures (pip install timm-fractalbrain)',
        'import timm',
        '',
        f"model = timm.create_model('hf-hub:{repo_id}', pretrained=True).eval()",
        'cfg = timm.data.resolve_data_config(model=model)',
        'transform = timm.data.create_transform(**cfg)',
        '```',
        '',
        '## Model',
        '',
        '| | |',
        '| --- | --- |',
        f'| architecture | `{arch}` (fractal pattern `{model.fractal_pattern.value}`) |',
        f'| classes | {model.num_classes} |',
        f'| input | {cfg["input_size"][0]} x {img} x {img}, mean {tuple(round(v, 4) for v in cfg["mean"])}, '
        f'std {tuple(round(v, 4) for v in cfg["std"])}, crop_pct {cfg.get("crop_pct")} |',
        f'| parameters | {params / 1e6:.2f} M |',
        f'| GMACs | {gmacs:.3f} at {img} x {img} |',
        '| weights | `model.safetensors` |',
    ]
    if cfg.get('label_names'):
        lines.append(f'| labels | {", ".join(map(str, cfg["label_names"]))} |')
    if results:
        last, best = results['last'], results['best']
        lines += ['', '## Results', '', f'From timm train.py\'s summary.csv ({results["epochs"]} epochs):', '',
                  '| | epoch | val top-1 | val top-5 | val loss |', '| --- | --- | --- | --- | --- |']
        for label, row in (('last', last), ('best', best)):
            lines.append(f'| {label} | {int(float(row["epoch"])) + 1} | {float(row["eval_top1"]):.2f} | '
                         f'{float(row.get("eval_top5", "nan")):.2f} | {float(row.get("eval_loss", "nan")):.4f} |')
    lines += ['', '## ONNX export', '', '```bash',
              f'huggingface-cli download {repo_id} model.safetensors --local-dir weights',
              f'fractalbrain-export --model {arch} --checkpoint weights/model.safetensors --output model.onnx '
              '--dynamic-size --reparam --check', '```', '']
    return '\n'.join(lines)


def _token() -> str:
    from huggingface_hub import get_token

    token = os.environ.get('HF_TOKEN') or get_token()
    if not token:
        raise HubError('No Hugging Face token: set HF_TOKEN or run `hf auth login` before pushing.')
    return token


def push(
        model_name: str,
        checkpoint: str,
        repo_id: str,
        num_classes: Optional[int] = None,
        use_ema: bool = False,
        private: bool = False,
        revision: Optional[str] = None,
        commit_message: str = 'Add FractalBrainNet weights',
        results: Optional[str] = None,
        label_names: Optional[List[str]] = None,
) -> str:
    """Check, then upload model.safetensors, config.json and README.md in one commit; returns the commit id."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from timm.models import save_for_hf

    _validate_repo_id(repo_id)
    token = _token()
    built = build_checked_model(model_name, checkpoint, num_classes, use_ema)
    model = built['model']
    summary = _read_results(results)
    model_config: Dict[str, Any] = {}
    labels = label_names or model.pretrained_cfg.get('label_names')
    if labels:
        if len(labels) != model.num_classes:
            raise HubError(f'{len(labels)} label names for {model.num_classes} classes.')
        model_config['label_names'] = list(labels)
    with tempfile.TemporaryDirectory() as folder:
        save_for_hf(model, folder, model_config=model_config, model_args=built['model_args'],
                    safe_serialization=True, data_config=built['data_config'] or None)
        with open(os.path.join(folder, 'config.json')) as f:
            cfg = json.load(f)
        model.pretrained_cfg = dict(model.pretrained_cfg, **cfg['pretrained_cfg'])
        Path(folder, 'README.md').write_text(model_card(repo_id, model, summary, built['train_args']))
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type='model')
            if revision and revision != 'main':
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision,
                                     commit_message=commit_message)
        except HfHubHTTPError as e:
            raise HubError(f'Upload to {repo_id!r} failed: {e}') from None
    return info.oid


def pull(repo_id: str, revision: Optional[str] = None, num_classes: Optional[int] = None,
         in_chans: Optional[int] = None) -> Dict[str, Any]:
    """Download through timm's hf-hub loading, verify the weights load, and return the card's key facts."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    _validate_repo_id(repo_id)
    try:
        config_path = hf_hub_download(repo_id, 'config.json', revision=revision)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as e:
        raise HubError(f'Cannot find config.json in {repo_id!r} (revision {revision or "main"}): '
                       f'{type(e).__name__}.') from None
    except HfHubHTTPError as e:
        raise HubError(f'Download from {repo_id!r} failed: {e}') from None
    with open(config_path) as f:
        cfg = json.load(f)
    arch = cfg.get('architecture')
    if not arch or not timm.is_model(arch):
        raise HubError(f'{repo_id!r} declares architecture {arch!r}, which timm does not know: import the plugin that '
                       'registers it (for FractalBrainNet: `import timm_fractalbrain`, or run through this tool).')
    kwargs: Dict[str, Any] = {}
    if num_classes is not None:
        kwargs['num_classes'] = num_classes
    if in_chans is not None:
        kwargs['in_chans'] = in_chans
    hub_id = f'hf-hub:{repo_id}' + (f'@{revision}' if revision else '')
    try:
        model = timm.create_model(hub_id, pretrained=True, **kwargs).eval()
    except Exception as e:  # safetensors / torch errors for truncated or corrupt files, strict-load mismatches
        raise HubError(f'The weights of {repo_id!r} do not load into {arch}: {type(e).__name__}: '
                       f'{str(e).splitlines()[0][:300]}. The download may be truncated or corrupt; remove it from '
                       'the cache (`hf cache delete`) and pull again.') from None
    facts = dict(repo_id=repo_id, revision=revision or 'main', architecture=arch,
                 num_classes=model.num_classes, in_chans=model.in_chans,
                 input_size=list(model.pretrained_cfg.get('input_size', ())),
                 label_names=cfg.get('label_names'), model_args=cfg.get('model_args', {}),
                 parameters=sum(p.numel() for p in model.parameters()))
    try:
        card = Path(hf_hub_download(repo_id, 'README.md', revision=revision)).read_text()
        front = card.split('---')[1] if card.startswith('---') else ''
        facts['license'] = next((line.split(':', 1)[1].strip() for line in front.splitlines()
                                 if line.startswith('license:')), None)
        facts['top1'] = next((line.split(':', 1)[1].strip() for line in front.splitlines()
                              if line.strip().startswith('value:')), None)
    except (EntryNotFoundError, HfHubHTTPError):
        pass
    facts['model'] = model
    return facts


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog='fractalbrain-hub', description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('push', help='check a checkpoint, then upload it as safetensors with config and card')
    p.add_argument('--model', '-m', required=True)
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--repo-id', required=True)
    p.add_argument('--num-classes', type=int, default=None)
    p.add_argument('--use-ema', action='store_true')
    p.add_argument('--private', action='store_true')
    p.add_argument('--revision', default=None)
    p.add_argument('--commit-message', default='Add FractalBrainNet weights')
    p.add_argument('--results', default=None, help="train.py's summary.csv, for the card's results table")
    p.add_argument('--label-names', nargs='+', default=None)
    q = sub.add_parser('pull', help='download, verify and describe a repo')
    q.add_argument('repo_id')
    q.add_argument('--revision', default=None)
    q.add_argument('--num-classes', type=int, default=None)
    q.add_argument('--in-chans', type=int, default=None)
    args = parser.parse_args(argv)

    import timm_fractalbrain  # noqa: F401  (registers the models)

    try:
        if args.cmd == 'push':
            oid = push(args.model, args.checkpoint, args.repo_id, args.num_classes, args.use_ema, args.private,
                       args.revision, args.commit_message, args.results, args.label_names)
            print(f'pushed {args.repo_id} (revision {args.revision or "main"}), commit {oid}')
        else:
            facts = pull(args.repo_id, args.revision, args.num_classes, args.in_chans)
            facts.pop('model')
            print(f'{facts["repo_id"]}@{facts["revision"]}: weights load into {facts["architecture"]} '
                  f'({facts["parameters"] / 1e6:.2f} M parameters)')
            for key in ('num_classes', 'in_chans', 'input_size', 'label_names', 'model_args', 'license', 'top1'):
                if facts.get(key) is not None:
                    print(f'  {key}: {facts[key]}')
    except HubError as e:
        print(f'fractalbrain-hub: error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
