"""What a model can be conditioned on, prepared the same way at training and at sampling time.

``layouts.py``: class maps (layouts) for layout-conditioned synthesis: real training masks
under D4 transforms and class-region copy-paste, steered toward class targets; the user's
own mask files, validated like any input.
"""
