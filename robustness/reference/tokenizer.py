"""A word-level tokenizer for the reference model, built from the phantom benchmark's own words.

The phantom vocabulary is small and closed (a few hundred clinical words, option texts, prompt
template words), so one token per word keeps sequences short and training fast. Words the model
never saw map to ``[UNK]`` instead of failing, so probes that rephrase a prompt still run.
Whitespace carries no information: ``"A"``, ``" A"`` and ``"\\nA"`` all encode to the same token,
which makes the letter and option-text scoring of the GD and PS modes independent of spacing.
"""

from __future__ import annotations

import string
from collections import Counter
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

PAD, UNK, BOS, EOS, IMAGE = "[PAD]", "[UNK]", "<s>", "</s>", "<image>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS, IMAGE)

# Always present, whatever the corpus: letters (option labels), digits, ASCII punctuation.
_BASE_WORDS: tuple[str, ...] = tuple(string.ascii_uppercase + string.ascii_lowercase
                                     + string.digits + string.punctuation)


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Split on whitespace, then isolate each punctuation mark and each digit."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Punctuation(behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
    ])


def split_words(text: str) -> list[str]:
    """The word units the tokenizer sees in ``text`` (same normalisation and splitting)."""
    normalized = normalizers.NFKC().normalize_str(text)
    return [piece for piece, _ in _pre_tokenizer().pre_tokenize_str(normalized)]


def build_vocabulary(texts: Iterable[str], *, case_variants: bool = True) -> list[str]:
    """All word units of ``texts`` plus the base characters, most frequent first (ties sorted).

    With ``case_variants`` each word is also added lower-cased and capitalised, so a prompt that
    moves a word to the start of a sentence does not turn it into ``[UNK]``.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        for word in split_words(text):
            counts[word] += 1
            if case_variants and word.isalpha():
                counts[word.lower()] += 0
                counts[word[:1].upper() + word[1:]] += 0
    for word in _BASE_WORDS:
        counts[word] += 0
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    return sorted(counts, key=lambda w: (-counts[w], w))


def build_tokenizer(words: Iterable[str]):
    """A ``PreTrainedTokenizerFast`` over ``words`` (special tokens get the first ids).

    Decoding joins words with spaces and removes the space before punctuation, so generated
    sentences read naturally (``"a nodule ."`` → ``"a nodule."``).
    """
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for token in (*SPECIAL_TOKENS, *words):
        vocab.setdefault(token, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.normalizer = normalizers.NFKC()
    core.pre_tokenizer = _pre_tokenizer()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    core.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS, eos_token=EOS, unk_token=UNK, pad_token=PAD,
        extra_special_tokens={"image_token": IMAGE},
        padding_side="left",
        model_max_length=2048,
        clean_up_tokenization_spaces=True,
    )
