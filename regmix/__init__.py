"""regmix: find a pre-training data mixture the RegMix way (arXiv 2407.01492).

Importing the package is cheap and torch-free; the training modules import torch themselves.
"""

__version__ = "0.1.0"
