"""Prompt tokenizers: the PaliGemma SentencePiece model (never downloaded) and an offline byte-level fallback.

Both produce openpi's formats: pi0 ``BOS + text + "\\n"``; pi0.5 with discrete state
``BOS + "Task: {text}, State: {256-bin state};\\nAction: "``. Output is padded (id 0, mask False) to
``max_len``; a longer prompt is an error (never silently cut), one within 10% of it a warning.
"""

import abc
import logging
import os
import pathlib

import numpy as np
import sentencepiece

logger = logging.getLogger("openpi")

PALIGEMMA_VOCAB_SIZE = 257_152
_PAD_ID, _BOS_ID = 0, 2
# Prompts longer than this fraction of max_len are warned about (once); longer than max_len are an error.
NEAR_LIMIT = 0.9
TOKENIZER_RELATIVE_PATH = "big_vision/paligemma_tokenizer.model"


def openpi_data_home() -> pathlib.Path:
    """``$OPENPI_DATA_HOME`` or ``~/.cache/openpi``: where openpi keeps its downloaded assets."""
    return pathlib.Path(os.environ.get("OPENPI_DATA_HOME", "~/.cache/openpi")).expanduser()


def discretize_state(state: np.ndarray, num_bins: int = 256) -> np.ndarray:
    """Bin index in ``[0, num_bins)`` of each state value, with equal bins over [-1, 1] (outside values clamp)."""
    bins = np.linspace(-1.0, 1.0, num_bins + 1)[:-1]
    return np.clip(np.digitize(state, bins) - 1, 0, num_bins - 1)


class _PromptTokenizer(abc.ABC):
    def __init__(self, max_len: int = 48):
        self._max_len = max_len
        self._warned = False  # the near-limit warning is given once per tokenizer

    @abc.abstractmethod
    def _encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS."""

    def tokenize(self, prompt: str, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens int32 [max_len], mask bool [max_len])``; with ``state`` the pi0.5 discrete-state format."""
        text = prompt.strip().replace("_", " ").replace("\n", " ")
        if state is None:
            tokens = [_BOS_ID, *self._encode(text), *self._encode("\n")]
        else:
            state_str = " ".join(map(str, discretize_state(np.asarray(state))))
            tokens = [_BOS_ID, *self._encode(f"Task: {text}, State: {state_str};\nAction: ")]
        if len(tokens) > self._max_len:
            raise ValueError(
                f"Prompt of {len(tokens)} tokens does not fit max_token_len={self._max_len} and would be cut "
                f"(prompt {text!r}{', with the state' if state is not None else ''}); raise --model.max-token-len to at "
                f"least {len(tokens)}{' or use fewer state dims (--data.state-dims)' if state is not None else ''}."
            )
        if len(tokens) > NEAR_LIMIT * self._max_len and not self._warned:
            self._warned = True
            logger.warning(
                "Prompt of %d tokens is within %d%% of max_token_len=%d: a longer task or state will not fit. "
                "Consider raising --model.max-token-len.",
                len(tokens),
                round((1 - NEAR_LIMIT) * 100),
                self._max_len,
            )
        mask = np.zeros(self._max_len, dtype=bool)
        mask[: len(tokens)] = True
        padded = np.full(self._max_len, _PAD_ID, dtype=np.int32)
        padded[: len(tokens)] = tokens
        return padded, mask


class PaligemmaTokenizer(_PromptTokenizer):
    """openpi's prompt tokenizer over the PaliGemma SentencePiece model (vocab 257,152).

    Loads ``path`` or ``$OPENPI_DATA_HOME/big_vision/paligemma_tokenizer.model``; never downloads.
    """

    def __init__(self, max_len: int = 48, path: str | pathlib.Path | None = None):
        super().__init__(max_len)
        model_path = (
            pathlib.Path(path).expanduser() if path is not None else openpi_data_home() / TOKENIZER_RELATIVE_PATH
        )
        if not model_path.is_file():
            raise FileNotFoundError(
                f"PaliGemma tokenizer not found at {model_path}. Copy it there (it is "
                f"gs://big_vision/paligemma_tokenizer.model, e.g. `gsutil cp gs://big_vision/paligemma_tokenizer.model "
                f"{model_path}`), set OPENPI_DATA_HOME to the openpi cache that holds {TOKENIZER_RELATIVE_PATH}, "
                "pass path=..., or use FallbackTokenizer for offline tests and demos."
            )
        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_path))

    def _encode(self, text: str) -> list[int]:
        return self._sp.encode(text)


class FallbackTokenizer(_PromptTokenizer):
    """Deterministic offline tokenizer: one id per UTF-8 byte (``256 + byte``), inside PaliGemma's vocab.

    Same interface and prompt formats as ``PaligemmaTokenizer``; for tests and demos without the real model.
    """

    _OFFSET = 256
    VOCAB_SIZE = _OFFSET + 256  # every id it emits is below this

    def _encode(self, text: str) -> list[int]:
        return [self._OFFSET + b for b in text.encode("utf-8")]


def vocab_size(kind: str) -> int:
    """Token ids a model's embedding must hold for tokenizer ``kind`` ("paligemma" or "offline")."""
    return FallbackTokenizer.VOCAB_SIZE if kind == "offline" else PALIGEMMA_VOCAB_SIZE


def load_tokenizer(max_len: int, *, path: str | pathlib.Path | None = None, fallback: bool = False) -> _PromptTokenizer:
    """The PaliGemma tokenizer if available; otherwise the fallback (with a warning) when ``fallback`` is set."""
    try:
        return PaligemmaTokenizer(max_len, path)
    except FileNotFoundError as err:
        if not fallback:
            raise
        logger.warning("%s Using the offline byte-level FallbackTokenizer instead.", err)
        return FallbackTokenizer(max_len)
