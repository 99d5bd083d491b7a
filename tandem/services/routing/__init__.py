"""The domain router at serving time: which modifier should answer a `model="auto"` request.

The keyword baseline and the trained ONNX router (ONNX Runtime + tokenizers + numpy, no torch),
named in `registry.py`. Their training recipe is `tandem.training.routing`.
"""
