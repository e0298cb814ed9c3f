"""Measure what SpeechBrain's adapters and Hugging Face peft do on our encoders.

The facts behind the choice in docs/encoders.md ("Parameter-efficient
adaptation"), measured on tiny random models (hidden 64, 2 layers) built
with ``tests/encoder_utils.py``. peft is not a dependency of the project:
install it anywhere and put it on the path to include its rows, e.g.::

    pip install --target /tmp/peft_pkg --no-deps peft accelerate
    PYTHONPATH=$PWD:/tmp/peft_pkg python tests/benchmarks/compare_adapter_libraries.py

Without peft the script prints SpeechBrain's rows only.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from encoder_utils import make_tiny_ssl  # noqa: E402


def hf_model(folder: Path) -> torch.nn.Module:
    """The Hugging Face model of a tiny folder, layer drop and masking off."""
    import transformers

    model = transformers.AutoModel.from_pretrained(folder)
    model.config.layerdrop = 0.0
    model.config.apply_spec_augment = False
    return model.eval()


def grads_of(model: torch.nn.Module, wav: torch.Tensor) -> dict[str, bool]:
    """Which trainable parameters receive a gradient from one backward pass."""
    out = model(wav).last_hidden_state
    out.sum().backward()
    return {
        name: param.grad is not None
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def speechbrain_rows(tmp: Path) -> list[str]:
    """Facts about speechbrain.nnet.adapters 1.1.2."""
    from speechbrain.nnet.adapters import AdaptedModel, HoulsbyAdapterLinear, LoRA

    rows = []
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 16)
    houlsby = HoulsbyAdapterLinear(linear, 4)
    x = torch.randn(3, 16)
    rows.append(
        "SpeechBrain HoulsbyAdapterLinear alone: wrapped weight requires_grad = "
        f"{linear.weight.requires_grad}; output == wrapped layer's at init: "
        f"{torch.equal(houlsby(x), linear(x))} (max |diff| "
        f"{(houlsby(x) - linear(x)).abs().max():.3g}); up-projection weight "
        f"all zero: {bool((houlsby.adapter_up_proj.weight == 0).all())}"
    )
    lora = LoRA(torch.nn.Linear(16, 16), rank=4)
    rows.append(
        "SpeechBrain LoRA alone: output == wrapped layer's at init: "
        f"{torch.equal(lora(x), lora.pretrained_module(x))}; wrapped weight "
        f"requires_grad = {lora.pretrained_module.weight.requires_grad}"
    )
    for kind in ("wav2vec2", "hubert", "wavlm"):
        model = hf_model(make_tiny_ssl(tmp / kind, kind=kind))
        adapted = AdaptedModel(
            model,
            LoRA,
            target_layers=["encoder.layers.*.attention.[qv]_proj"],
            adapter_kwargs={"rank": 4},
        )
        try:
            got = grads_of(adapted, torch.randn(1, 8000))
            rows.append(
                f"SpeechBrain AdaptedModel+LoRA on {kind} q/v: {sum(got.values())}"
                f"/{len(got)} trainable tensors get a gradient"
            )
        except Exception as err:  # noqa: BLE001 (the measured fact)
            rows.append(
                f"SpeechBrain AdaptedModel+LoRA on {kind} q/v: forward fails: "
                f"{type(err).__name__}: {err}"
            )
        if kind == "wav2vec2":
            result = adapted.load_state_dict({}, strict=False)
            path = tmp / "adapters.ckpt"
            torch.save({}, path)
            adapted.loader(path, end_of_epoch=False)
            rows.append(
                "SpeechBrain AdaptedModel.loader on an empty checkpoint: no error "
                f"({len(result.missing_keys)} keys missing, loaded silently)"
            )
    return rows


def peft_rows(tmp: Path) -> list[str]:
    """Facts about peft's LoRA on the same models."""
    try:
        import peft
    except ImportError:
        return ["peft not importable: its rows skipped"]
    rows = []
    for kind in ("wav2vec2", "hubert", "wavlm"):
        model = hf_model(make_tiny_ssl(tmp / kind, kind=kind))
        config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
        lora_model = peft.get_peft_model(model, config)
        before = {
            n: p.detach().clone()
            for n, p in lora_model.named_parameters()
            if p.requires_grad
        }
        opt = torch.optim.Adam([p for p in lora_model.parameters() if p.requires_grad])
        out = lora_model(input_values=torch.randn(1, 8000)).last_hidden_state
        if not out.requires_grad:
            rows.append(
                f"peft {peft.__version__} LoRA on {kind} q_proj/v_proj: the output "
                f"does not depend on any of the {len(before)} LoRA tensors (no "
                "gradient; backward() raises)"
            )
            continue
        for _ in range(3):
            opt.zero_grad()
            out = lora_model(input_values=torch.randn(1, 8000)).last_hidden_state
            out.sum().backward()
            opt.step()
        changed = sum(
            not torch.equal(p, before[n])
            for n, p in lora_model.named_parameters()
            if p.requires_grad
        )
        rows.append(
            f"peft {peft.__version__} LoRA on {kind} q_proj/v_proj: "
            f"{changed}/{len(before)} LoRA tensors change in 3 Adam steps"
        )
        if kind == "wav2vec2":
            lora_model.save_pretrained(tmp / "peft_export")
            files = sorted(p.name for p in (tmp / "peft_export").iterdir())
            rows.append(
                f"peft save_pretrained writes {files}; loading them back "
                "(PeftModel.from_pretrained) needs peft installed"
            )
    rows.append(
        "gates: neither library has a learnable gate on a branch (peft's LoRA "
        "variants scale by alpha / r; SpeechBrain's by alpha / rank)"
    )
    return rows


def main() -> None:
    """Print one line per measured fact."""
    with tempfile.TemporaryDirectory() as tmp:
        for row in speechbrain_rows(Path(tmp)) + peft_rows(Path(tmp)):
            print("-", row)


if __name__ == "__main__":
    main()
