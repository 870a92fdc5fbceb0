#!/usr/bin/env python
"""Export FractalBrainNet to ONNX from a clone (same as the `fractalbrain-export` console script).

    python export/onnx_export.py --model fractalbrainnet_small --output small.onnx --dynamic-size --check
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timm_fractalbrain.onnx_export import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
