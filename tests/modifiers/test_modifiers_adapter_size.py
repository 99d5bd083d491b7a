"""LoRA size arithmetic against peft's own parameter count, and the plan's 8B figure."""

from __future__ import annotations

from tandem.training.modifiers.adapter_size import ALL_LINEAR, LLAMA_3_1_8B, lora_bytes, lora_parameters


def test_rank_8_on_all_linear_layers_of_llama_3_1_8b_is_the_plans_40_to_50_mb():
    assert 40e6 <= lora_bytes(LLAMA_3_1_8B, 8, ALL_LINEAR, "f16") <= 50e6
    assert lora_bytes(LLAMA_3_1_8B, 16, ALL_LINEAR, "f16") > 50e6


def test_parameter_count_matches_peft_on_a_gqa_llama():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2}
    model = LlamaForCausalLM(LlamaConfig(vocab_size=128, **shape))
    targets = ["q_proj", "v_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=targets))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert lora_parameters(shape, 4, targets) == trainable
