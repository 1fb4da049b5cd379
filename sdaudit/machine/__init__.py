"""Machine labellers (issue 25): each turns images into the study's answers plus scores, stored as a
labelling apart from people's labels (``store/machine.py``).

- ``labellers.py``: what a labeller is (``Labeller``) and how one is made by name (``make_labeller``);
- one module per labeller: ``clip.py`` (zero-shot CLIP through ``transformers``) and
  ``skin_pixels.py`` (a face found by OpenCV's bundled cascade, its skin pixels matched to the
  nearest Monk Skin Tone swatch).

Nothing here imports torch, transformers or OpenCV at module level: the CLI parses without them.
"""
