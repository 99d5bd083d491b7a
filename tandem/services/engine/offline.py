"""The seam through which offline code runs the serving engine in-process.

Training, compression and label collection score and answer with the very engine that serves
(same model loading, chat templates, tool-call parsing), so that what they measure is what is
served. They import it from here and nowhere else in `tandem.services.engine`: the import
contracts in pyproject.toml hold them to this module, so the engine's internals can change
without reaching into every recipe.
"""

from tandem.services.engine.batched import BatchedEngine, SamplingParams
from tandem.services.engine.chat import TOOLS_INSTRUCTION, ChatPrompter, parse_tool_calls
from tandem.services.engine.llama_loader import load_llama

__all__ = ["TOOLS_INSTRUCTION", "BatchedEngine", "ChatPrompter", "SamplingParams", "load_llama", "parse_tool_calls"]
