"""Serving maskrt artifacts on Triton Inference Server through PyTriton (``maskrt serve``).

:mod:`maskrt.runtime.serve.env` finds or creates the environment PyTriton lives in (its own venv: PyTriton needs
numpy<2 and an interpreter whose stdlib matches its Python-backend stub); :mod:`maskrt.runtime.serve.server` is
the server process that runs there. Neither imports torch.
"""
