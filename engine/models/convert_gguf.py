"""Convert a GGUF checkpoint into a Hugging Face folder (config, tokenizer, safetensors) that vLLM serves.

Not imported by modelplex: the engine's python runs this file (it has torch, transformers, gguf and
accelerate; the main virtualenv does not), started by `modelplex models prepare` as
`python -I convert_gguf.py GGUF_FILE OUT_DIR`. vLLM 0.31 cannot load these GGUF files itself;
transformers de-quantizes them on load.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch  # type: ignore[import-not-found]
from transformers import AutoModelForCausalLM, AutoTokenizer  # type: ignore[import-not-found]


def convert(gguf: Path, out: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # The weights are de-quantized now, but the GGUF quantizer is still attached, and save_pretrained
    # refuses to write a quantized model: drop every trace of it.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: convert_gguf.py GGUF_FILE OUT_DIR")
    gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
    convert(gguf, out)
    print(f"Converted gguf={gguf.name} out={out}", flush=True)


if __name__ == "__main__":
    main()
