#!/usr/bin/env python
"""Push / pull FractalBrainNet weights on the Hugging Face Hub from a clone (same as `fractalbrain-hub`).

    python hub/push_to_hub.py push --model fractalbrainnet_small --checkpoint last.pth.tar --repo-id ORG/NAME
    python hub/push_to_hub.py pull ORG/NAME
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timm_fractalbrain.hub import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
