"""Prompt tokenizers: openpi's pi0 / pi0.5 formats, padding, the local-only SentencePiece model and its error."""

import numpy as np
import pytest
import sentencepiece

from openpi.models import tokenizer as _tokenizer


@pytest.fixture(scope="module")
def sp_model_path(tmp_path_factory):
    """A small SentencePiece model trained offline with PaliGemma's special ids (pad 0, eos 1, bos 2)."""
    root = tmp_path_factory.mktemp("sp")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(["pick up the red cup", "open the door", "Task: move, State: 1 2 3;", "Action: "] * 50))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(root / "tok"),
        vocab_size=40,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        user_defined_symbols=["\n"],
        minloglevel=2,
        remove_extra_whitespaces=False,
    )
    return root / "tok.model"


def test_pi0_format_is_bos_text_newline(sp_model_path):
    tok = _tokenizer.PaligemmaTokenizer(max_len=40, path=sp_model_path)
    tokens, mask = tok.tokenize("pick_up the red cup\n")
    sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_model_path))
    expected = [2, *sp.encode("pick up the red cup"), *sp.encode("\n")]
    assert tokens.dtype == np.int32 and mask.dtype == bool
    assert tokens[: len(expected)].tolist() == expected
    assert mask.tolist() == [True] * len(expected) + [False] * (40 - len(expected))
    assert np.all(tokens[len(expected) :] == 0)


def test_pi05_discrete_state_format(sp_model_path):
    tok = _tokenizer.PaligemmaTokenizer(max_len=200, path=sp_model_path)
    state = np.array([-1.0, 0.0, 0.999, 1.0, 2.0])
    tokens, mask = tok.tokenize("open the door", state=state)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_model_path))
    expected = [2, *sp.encode("Task: open the door, State: 0 128 255 255 255;\nAction: ")]
    assert tokens[: mask.sum()].tolist() == expected


def test_discretize_state_uses_256_equal_bins_on_minus_one_to_one():
    values = np.array([-1.0, -1 + 2 / 256 - 1e-6, -1 + 2 / 256, 0.0, 1.0 - 1e-6, 5.0, -5.0])
    assert _tokenizer.discretize_state(values).tolist() == [0, 0, 1, 128, 255, 255, 0]


def test_a_prompt_that_would_be_cut_is_an_error_and_one_near_the_limit_a_warning(caplog):
    # Byte-level: BOS + one token per byte + "\n" → "abcdefgh" is 10 tokens.
    with pytest.raises(ValueError, match=r"10 tokens does not fit max_token_len=9.*--model.max-token-len"):
        _tokenizer.FallbackTokenizer(max_len=9).tokenize("abcdefgh")
    with caplog.at_level("WARNING", logger="openpi"):
        _tokenizer.FallbackTokenizer(max_len=12).tokenize("abcdefgh")  # 10 <= 0.9 * 12: quiet
        assert not caplog.records
        tok = _tokenizer.FallbackTokenizer(max_len=11)  # 10 > 0.9 * 11: warned, once
        tokens, mask = tok.tokenize("abcdefgh")
        tok.tokenize("abcdefgh")
    assert len(caplog.records) == 1 and "within 10% of max_token_len=11" in caplog.records[0].getMessage()
    assert mask.sum() == 10 and tokens.shape == (11,)


def test_missing_model_error_says_where_it_looked_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENPI_DATA_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        _tokenizer.PaligemmaTokenizer(max_len=48)
    message = str(err.value)
    assert str(tmp_path / "big_vision" / "paligemma_tokenizer.model") in message
    assert "gs://big_vision/paligemma_tokenizer.model" in message
    assert not (tmp_path / "big_vision").exists()


def test_default_location_is_openpi_data_home(sp_model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENPI_DATA_HOME", str(tmp_path))
    target = tmp_path / "big_vision" / "paligemma_tokenizer.model"
    target.parent.mkdir()
    target.write_bytes(sp_model_path.read_bytes())
    tokens, _ = _tokenizer.PaligemmaTokenizer(max_len=32).tokenize("open the door")
    assert tokens[0] == 2


def test_fallback_tokenizer_is_deterministic_byte_level_within_vocab():
    tok = _tokenizer.FallbackTokenizer(max_len=16)
    tokens, mask = tok.tokenize("ab")
    assert tokens[: mask.sum()].tolist() == [2, 256 + ord("a"), 256 + ord("b"), 256 + ord("\n")]
    again, _ = _tokenizer.FallbackTokenizer(max_len=16).tokenize("ab")
    np.testing.assert_array_equal(tokens, again)
    long_tokens, _ = _tokenizer.FallbackTokenizer(max_len=300).tokenize("ü€", state=np.ones(8))
    assert long_tokens.max() < _tokenizer.PALIGEMMA_VOCAB_SIZE


def test_load_tokenizer_falls_back_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENPI_DATA_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        _tokenizer.load_tokenizer(8)
    assert isinstance(_tokenizer.load_tokenizer(8, fallback=True), _tokenizer.FallbackTokenizer)
