"""musc-ecd: synthetic contrastive preference data and token-weighted preference training.

Importing the package is cheap on purpose: no torch, no transformers, no vLLM. Heavy modules are
imported by the functions that need them.
"""

__version__ = "0.1.0"
